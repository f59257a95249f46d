//! The gallery page: the filter form (a plain GET form, so every view is a URL), a paged grid
//! of cards and the link to the next page.

use std::fmt::Write;

use editshard::read::Dataset;
use editshard::record::Kind;

use crate::cards::{card, error_card};
use crate::html::{Nav, esc, page};
use crate::pick::{Picked, pick};
use crate::query::Selection;

pub async fn gallery_page(ds: &Dataset, name: &str, sel: &Selection) -> String {
    let picked = pick(ds, sel).await;
    let mut body = form(ds, sel);
    for p in &sel.problems {
        let _ = write!(body, "<p class=\"problem\">{}</p>", esc(p));
    }
    body.push_str(&summary(ds, sel, &picked));
    body.push_str("<section class=\"grid\">");
    let src = |index: u64, k: usize| Some(format!("/thumb/{index}/{k}"));
    for shown in &picked.shown {
        match &shown.record {
            Ok(r) => body.push_str(&card(shown.index, r, &src, true)),
            Err(e) => body.push_str(&error_card(shown.index, e)),
        }
    }
    body.push_str("</section>");
    body.push_str(&pager(sel, &picked));
    page("Gallery", name, Nav::Gallery, &body)
}

fn summary(ds: &Dataset, sel: &Selection, picked: &Picked) -> String {
    let m = ds.manifest();
    let total = match (sel.kind, sel.needs_metadata() || sel.id.is_some()) {
        (None, false) => format!("{} records", m.records),
        (Some(k), false) => format!(
            "{} {} records",
            m.kinds.get(k.name()).copied().unwrap_or(0),
            k.name()
        ),
        _ => format!("{} records, filtered", m.records),
    };
    let order = match sel.seed {
        Some(seed) => format!("random sample, seed {seed}"),
        None => "stored order".to_string(),
    };
    let mut html = format!(
        "<p class=\"summary\">{total} · {order} · showing {} from position {} ({} looked at)</p>",
        picked.shown.len(),
        sel.start,
        picked.scanned
    );
    if picked.shown.is_empty() {
        html.push_str("<p class=\"empty\">No record here matches these filters.</p>");
    }
    if picked.budget_spent {
        let _ = write!(
            html,
            "<p class=\"problem\">Stopped after reading the metadata of {} records; \
             the next page goes on from there.</p>",
            picked.scanned
        );
    }
    html
}

fn pager(sel: &Selection, picked: &Picked) -> String {
    let mut html = String::from("<nav class=\"pager\">");
    if sel.start > 0 {
        let _ = write!(
            html,
            "<a href=\"{}\" rel=\"first\">first page</a> ",
            esc(&sel.href(0))
        );
    }
    if let Some(next) = picked.next {
        let _ = write!(
            html,
            "<a href=\"{}\" rel=\"next\">next page →</a>",
            esc(&sel.href(next))
        );
    }
    html.push_str("</nav>");
    html
}

fn form(ds: &Dataset, sel: &Selection) -> String {
    let m = ds.manifest();
    let options = |name: &str, label: &str, values: Vec<String>, current: Option<&str>| {
        let mut html = format!(
            "<label>{label} <select name=\"{name}\" id=\"f-{name}\"><option value=\"\">any</option>"
        );
        for v in values {
            let selected = if Some(v.as_str()) == current {
                " selected"
            } else {
                ""
            };
            let _ = write!(
                html,
                "<option value=\"{0}\"{selected}>{0}</option>",
                esc(&v)
            );
        }
        html.push_str("</select></label>");
        html
    };
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .filter(|k| m.kinds.contains_key(k.name()))
        .map(|k| k.name().to_string())
        .collect();
    let value = |v: Option<String>| v.map(|v| esc(&v)).unwrap_or_default();
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/\">{kind}{edit}{cat}\
         <label>score <input name=\"score\" id=\"f-score\" value=\"{score}\" placeholder=\"overall\" size=\"12\"></label>\
         <label>min <input name=\"min\" id=\"f-min\" value=\"{min}\" size=\"4\" inputmode=\"decimal\"></label>\
         <label>max <input name=\"max\" id=\"f-max\" value=\"{max}\" size=\"4\" inputmode=\"decimal\"></label>\
         <label>id contains <input name=\"id\" id=\"f-id\" value=\"{id}\" size=\"16\"></label>\
         <label>random sample, seed <input name=\"seed\" id=\"f-seed\" value=\"{seed}\" size=\"6\" inputmode=\"numeric\"></label>\
         <button type=\"submit\" id=\"f-apply\">Apply</button> <a href=\"/\">clear</a></form>",
        kind = options("kind", "kind", kinds, sel.kind.map(|k| k.name())),
        edit = options(
            "edit_type",
            "edit type",
            m.edit_types.keys().cloned().collect(),
            sel.edit_type.as_deref()
        ),
        cat = options(
            "category",
            "category",
            m.categories.keys().cloned().collect(),
            sel.category.as_deref()
        ),
        score = value(
            sel.score
                .clone()
                .filter(|_| sel.min.is_some() || sel.max.is_some())
        ),
        min = value(sel.min.map(|v| v.to_string())),
        max = value(sel.max.map(|v| v.to_string())),
        id = value(sel.id.clone()),
        seed = value(sel.seed.map(|v| v.to_string())),
    )
}
