//! The record page: every field of one record, its images at full size with their media
//! type, dimensions, bytes, SHA-256 and provenance, and download links.

use std::fmt::Write;

use editshard::read::{Dataset, Images};
use editshard::record::{Image, Record};

use crate::cards::scores;
use crate::html::{Nav, esc, page};

/// The page of global record `index`; `Err` is the located read error (shown by the caller).
pub async fn record_page(ds: &Dataset, name: &str, index: u64) -> editshard::Result<String> {
    // Metadata only: the images are separate requests of the browser (`/image/...`).
    let record = ds.get_with(index, Images::None).await?;
    Ok(page(
        &record.id,
        name,
        Nav::Record,
        &body(ds, index, &record),
    ))
}

fn body(ds: &Dataset, index: u64, r: &Record) -> String {
    let mut html = format!(
        "<h1 class=\"record-id\">{}</h1><p class=\"record-nav\">record #{index} of {} · kind <b>{}</b> · \
         <a href=\"/record/{index}/json\" download=\"record-{index}.json\">metadata (JSON)</a>",
        esc(&r.id),
        ds.len(),
        r.kind.name()
    );
    if index > 0 {
        let _ = write!(
            html,
            " · <a href=\"/record/{}\" rel=\"prev\">← previous</a>",
            index - 1
        );
    }
    if index + 1 < ds.len() {
        let _ = write!(
            html,
            " · <a href=\"/record/{}\" rel=\"next\">next →</a>",
            index + 1
        );
    }
    html.push_str("</p>");

    let p = &r.provenance;
    html.push_str("<h2>Provenance</h2><dl class=\"fields\">");
    field(&mut html, "subset", p.subset.as_deref());
    field(&mut html, "file", p.file.as_deref());
    field(&mut html, "line", p.line.map(|l| l.to_string()).as_deref());
    field(&mut html, "licence", p.licence.as_deref());
    field(&mut html, "dataset", p.dataset.as_deref());
    field(&mut html, "revision", p.revision.as_deref());
    field(
        &mut html,
        "row group",
        p.row_group.map(|g| g.to_string()).as_deref(),
    );
    field(&mut html, "row", p.row.map(|r| r.to_string()).as_deref());
    html.push_str("</dl>");

    let mut k = 0usize;
    html.push_str("<h2>Source</h2>");
    html.push_str(&image_block(index, k, &r.source, "source"));
    for (t, turn) in r.turns.iter().enumerate() {
        let _ = write!(
            html,
            "<section class=\"turn\"><h2>Turn {}</h2><dl class=\"fields\">",
            t + 1
        );
        field(&mut html, "instruction", turn.instruction.as_deref());
        field(
            &mut html,
            "short instruction",
            turn.short_instruction.as_deref(),
        );
        field(&mut html, "edit type", turn.edit_type.as_deref());
        field(&mut html, "category", turn.category.as_deref());
        for (j, variant) in turn.instruction_variants.iter().enumerate() {
            field(&mut html, &format!("variant {}", j + 1), Some(variant));
        }
        html.push_str("</dl>");
        k += 1;
        let label = if turn.rejected.is_empty() {
            "output"
        } else {
            "chosen"
        };
        html.push_str(&image_block(index, k, &turn.output, label));
        for (j, rej) in turn.rejected.iter().enumerate() {
            k += 1;
            html.push_str(&image_block(index, k, rej, &format!("rejected {}", j + 1)));
        }
        // Last in the turn's canonical image order, shown next to the output it masks.
        if let Some(mask) = &turn.mask {
            k += 1;
            html.push_str(&image_block(index, k, mask, "mask"));
        }
        html.push_str("</section>");
    }
    if !r.extras.is_empty() {
        let pretty = serde_json::to_string_pretty(&r.extras).unwrap_or_default();
        let _ = write!(
            html,
            "<h2>Other fields</h2><pre class=\"extras\">{}</pre>",
            esc(&pretty)
        );
    }
    html
}

fn field(html: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        let _ = write!(html, "<dt>{}</dt><dd>{}</dd>", esc(name), esc(v));
    }
}

fn image_block(index: u64, k: usize, img: &Image, label: &str) -> String {
    let mut html = format!(
        "<figure class=\"full\"><a href=\"/image/{index}/{k}\"><img src=\"/image/{index}/{k}\" \
         alt=\"{label} of record #{index}\" width=\"{w}\" height=\"{h}\"></a><figcaption><b>{label}</b>\
         <dl class=\"fields\">",
        label = esc(label),
        w = img.width.max(1),
        h = img.height.max(1),
    );
    field(&mut html, "caption", img.caption.as_deref());
    field(&mut html, "media type", Some(&img.media_type));
    field(
        &mut html,
        "dimensions",
        Some(&format!("{}×{} px", img.width, img.height)),
    );
    field(&mut html, "bytes", Some(&img.len.to_string()));
    let _ = write!(
        html,
        "<dt>SHA-256</dt><dd><code>{}</code></dd>",
        img.sha256_hex()
    );
    field(&mut html, "source URL", img.url.as_deref());
    field(&mut html, "release path", img.path.as_deref());
    field(
        &mut html,
        "rotation",
        img.rotation.map(|r| format!("{r}°")).as_deref(),
    );
    html.push_str("</dl>");
    html.push_str(&scores(&img.scores));
    let _ = write!(
        html,
        "<a class=\"download\" href=\"/image/{index}/{k}?download=1\">download</a></figcaption></figure>"
    );
    html
}
