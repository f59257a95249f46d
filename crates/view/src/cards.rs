//! A gallery card: a record's images side by side as thumbnails (source and edit; chosen
//! next to each rejected edit; a multi-turn session as a strip of turns), its instruction,
//! labels and scores. A record that cannot be read gets a card holding the located error.

use std::fmt::Write;

use editshard::Error;
use editshard::record::{Image, Kind, Record, Score};

use crate::html::{esc, truncate};
use crate::thumbs::thumb_size;

/// Where a card's thumbnails come from: a URL of the app, or an embedded `data:` URI in a
/// static report. `None` when there is no thumbnail (the report could not make one).
pub type ThumbSrc<'a> = &'a dyn Fn(u64, usize) -> Option<String>;

/// How long the short instruction may be on a card before it is cut.
const SHORT_CHARS: usize = 140;

pub fn card(index: u64, record: &Record, src: ThumbSrc, link: bool) -> String {
    let mut html = String::new();
    let id = if link {
        format!(
            "<a class=\"id\" href=\"/record/{index}\" title=\"{id}\">{short}</a>",
            id = esc(&record.id),
            short = esc(&truncate(&record.id, 60))
        )
    } else {
        format!(
            "<span class=\"id\" title=\"{0}\">{0}</span>",
            esc(&record.id)
        )
    };
    let _ = write!(
        html,
        "<article class=\"card kind-{kind}\" data-index=\"{index}\"><header>\
         <span class=\"kind\">{kind}</span> <span class=\"index\">#{index}</span> {id}</header>",
        kind = record.kind.name(),
    );
    html.push_str("<div class=\"strip\">");
    let mut k = 0usize;
    html.push_str(&figure(index, k, &record.source, "source", None, src));
    for (t, turn) in record.turns.iter().enumerate() {
        k += 1;
        let (label, caption) = match record.kind {
            Kind::Preference => ("chosen".to_string(), None),
            Kind::MultiTurn => (
                format!("turn {}", t + 1),
                turn.instruction
                    .as_deref()
                    .or(turn.short_instruction.as_deref()),
            ),
            _ if record.turns.len() > 1 => (format!("turn {}", t + 1), turn.instruction.as_deref()),
            _ => ("edited".to_string(), None),
        };
        html.push_str(&figure(index, k, &turn.output, &label, caption, src));
        for (j, rejected) in turn.rejected.iter().enumerate() {
            k += 1;
            html.push_str(&figure(
                index,
                k,
                rejected,
                &format!("rejected {}", j + 1),
                None,
                src,
            ));
        }
    }
    html.push_str("</div>");
    if record.kind != Kind::MultiTurn {
        if let Some(turn) = record.turns.first() {
            html.push_str(&instruction(
                turn.short_instruction.as_deref(),
                turn.instruction.as_deref(),
            ));
        }
    }
    let mut labels = String::new();
    for turn in record.turns.iter().take(1) {
        if let Some(e) = &turn.edit_type {
            let _ = write!(
                labels,
                "<dt>edit type</dt><dd class=\"edit-type\">{}</dd>",
                esc(e)
            );
        }
        if let Some(c) = &turn.category {
            let _ = write!(
                labels,
                "<dt>category</dt><dd class=\"category\">{}</dd>",
                esc(c)
            );
        }
    }
    if !labels.is_empty() {
        let _ = write!(html, "<dl class=\"labels\">{labels}</dl>");
    }
    html.push_str("</article>");
    html
}

/// The card of a record that could not be read: what failed and where, and what to do.
pub fn error_card(index: u64, error: &Error) -> String {
    format!(
        "<article class=\"card damaged\" data-index=\"{index}\"><header>\
         <span class=\"kind\">damaged</span> <span class=\"index\">#{index}</span></header>\
         <p class=\"error\">{}</p><p class=\"hint\">hint: {}</p></article>",
        esc(&error.to_string()),
        esc(editshard::advice::hint(error))
    )
}

fn instruction(short: Option<&str>, long: Option<&str>) -> String {
    let shown = short.or(long).unwrap_or("");
    let mut html = format!(
        "<p class=\"instruction\">{}</p>",
        esc(&truncate(shown, SHORT_CHARS))
    );
    if let Some(long) = long.filter(|l| Some(*l) != Some(shown) || l.chars().count() > SHORT_CHARS)
    {
        let _ = write!(
            html,
            "<details class=\"long\"><summary>full instruction</summary><p>{}</p></details>",
            esc(long)
        );
    }
    html
}

fn figure(
    index: u64,
    k: usize,
    image: &Image,
    label: &str,
    caption: Option<&str>,
    src: ThumbSrc,
) -> String {
    let (tw, th) = thumb_size(image.width, image.height);
    let img = match src(index, k) {
        Some(url) => format!(
            "<img src=\"{}\" width=\"{tw}\" height=\"{th}\" alt=\"{} of record #{index}\">",
            esc(&url),
            esc(label)
        ),
        None => "<div class=\"no-thumb\">no thumbnail</div>".to_string(),
    };
    let mut html = format!(
        "<figure class=\"image\">{img}<figcaption><b>{}</b> · {}×{}",
        esc(label),
        image.width,
        image.height
    );
    if let Some(c) = caption {
        let _ = write!(
            html,
            "<span class=\"turn-instruction\" title=\"{}\">{}</span>",
            esc(c),
            esc(&truncate(c, 90))
        );
    }
    html.push_str(&scores(&image.scores));
    html.push_str("</figcaption></figure>");
    html
}

pub fn scores(scores: &[Score]) -> String {
    if scores.is_empty() {
        return String::new();
    }
    let mut html = String::from("<ul class=\"scores\">");
    for s in scores {
        let _ = write!(
            html,
            "<li><span>{}</span> {:.2}</li>",
            esc(&s.name),
            s.value
        );
    }
    html.push_str("</ul>");
    html
}
