//! The web app: routes, the shared state (dataset, thumbnail cache, sampled statistics) and
//! the headers every response carries.
//!
//! Every route is fixed; nothing maps a request path to a file. Static assets are compiled in
//! and looked up by exact name, so no path can reach a file outside what the app serves.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use editshard::Error;
use editshard::read::Images;
use futures_util::StreamExt;

use crate::app::{App, ImageFailure, ThumbError};
use crate::budget::Held;
use crate::html::{Nav, esc, page};
use crate::images::{download_name, served_media_type};
use crate::query::Selection;
use crate::stats::{DEFAULT_SAMPLE, DEFAULT_SEED, MAX_SAMPLE, stats_html};

/// Scripts are forbidden outright (the app has none); styles, images and forms only from the
/// app itself.
pub const CSP: &str = "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const STYLE: &str = include_str!("../static/style.css");

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(gallery))
        .route("/record/{index}", get(record))
        .route("/record/{index}/json", get(record_json))
        .route("/find", get(find))
        .route("/image/{index}/{k}", get(image))
        .route("/thumb/{index}/{k}", get(thumb))
        .route("/stats", get(stats))
        .route("/static/{name}", get(static_file))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            check_host,
        ))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(app)
}

/// Refuses a request for a host name the app was not started under (a page on another site
/// reaching 127.0.0.1 through DNS rebinding carries its own name): see [`crate::hosts`]. A
/// request without a `Host` (no browser sends one) is served.
async fn check_host(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let from_uri = req.uri().authority().map(|a| a.host().to_string());
    let from_header = req
        .headers()
        .get_all(header::HOST)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let Some(bad) = from_uri
        .into_iter()
        .chain(from_header)
        .find(|h| !app.hosts.allows(h))
    {
        log::debug!("refused a request for host {bad:?}");
        let body = format!(
            "<h1>403</h1><p class=\"error\">This server answers to {} only; this request was \
             for {}.</p><p class=\"hint\">A web page of another site may be trying to read \
             this dataset through your browser (DNS rebinding). If you reach the server by \
             this name on purpose, start it with <code>editshard view --allow-host {}</code>.\
             </p>",
            esc(&app.hosts.describe()),
            esc(&bad),
            esc(&crate::hosts::host_of(&bad).unwrap_or_else(|| "NAME".to_string())),
        );
        return html(
            StatusCode::FORBIDDEN,
            page("Forbidden", &app.name, Nav::Record, &body),
        );
    }
    next.run(req).await
}

async fn secure_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn error_page(app: &App, status: StatusCode, e: &Error) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\">{}</p><p class=\"hint\">hint: {}</p>",
        status.as_u16(),
        esc(&e.to_string()),
        esc(e.hint())
    );
    html(status, page("Error", &app.name, Nav::Record, &body))
}

fn status_of(e: &Error) -> StatusCode {
    if e.is_corruption() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if matches!(e.kind(), editshard::ErrorKind::Invalid(_)) {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_GATEWAY
    }
}

async fn gallery(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sel = Selection::from_params(&q);
    html(
        StatusCode::OK,
        crate::gallery::gallery_page(&app.ds, &app.name, &sel).await,
    )
}

async fn record(State(app): State<Arc<App>>, Path(index): Path<u64>) -> Response {
    match crate::record_page::record_page(&app.ds, &app.name, index).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => error_page(&app, status_of(&e), &e),
    }
}

async fn record_json(State(app): State<Arc<App>>, Path(index): Path<u64>) -> Response {
    match app.ds.get_with(index, Images::None).await {
        Ok(r) => {
            let json = serde_json::to_string_pretty(&r).unwrap_or_default();
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"record-{index}.json\""),
                    ),
                ],
                json,
            )
                .into_response()
        }
        Err(e) => error_page(&app, status_of(&e), &e),
    }
}

async fn find(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let id = q.get("id").map(String::as_str).unwrap_or("");
    match app.ds.find(id).await {
        Ok(Some(index)) => Redirect::to(&format!("/record/{index}")).into_response(),
        Ok(None) => error_page(
            &app,
            StatusCode::NOT_FOUND,
            &Error::invalid(format!("no record has the id {id:?}")),
        ),
        Err(e) => error_page(&app, status_of(&e), &e),
    }
}

async fn image(
    State(app): State<Arc<App>>,
    Path((index, k)): Path<(u64, usize)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match app.image(index, k).await {
        Ok((bytes, held)) => {
            let media_type = served_media_type(&bytes);
            let mut res = Response::new(held_body(bytes, held));
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            );
            if q.contains_key("download") {
                let disposition = format!(
                    "attachment; filename=\"{}\"",
                    download_name(index, k, media_type)
                );
                if let Ok(v) = HeaderValue::from_str(&disposition) {
                    h.insert(header::CONTENT_DISPOSITION, v);
                }
            }
            res
        }
        Err(ImageFailure::Dataset(e)) => error_page(&app, status_of(&e), &e),
        Err(ImageFailure::Refused(ThumbError::Busy(msg))) => busy(html(
            StatusCode::SERVICE_UNAVAILABLE,
            page("Busy", &app.name, Nav::Record, &message_body(503, &msg)),
        )),
        Err(ImageFailure::Refused(ThumbError::Failed(msg))) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            page("Error", &app.name, Nav::Record, &message_body(422, &msg)),
        ),
    }
}

/// Image bytes as a response body that keeps their share of the image memory held until the
/// body is dropped (sent, or the client gone). Sent in slices of one allocation, so that the
/// last slice leaves the server about when the memory is given back.
fn held_body(bytes: bytes::Bytes, held: Held) -> Body {
    const SLICE: usize = 256 << 10;
    let slices: Vec<bytes::Bytes> = (0..bytes.len())
        .step_by(SLICE)
        .map(|at| bytes.slice(at..(at + SLICE).min(bytes.len())))
        .collect();
    drop(bytes);
    let stream = futures_util::stream::iter(slices).map(move |slice| {
        let _ = &held;
        Ok::<_, std::convert::Infallible>(slice)
    });
    Body::from_stream(stream)
}

/// A 503 with `Retry-After`.
fn busy(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(crate::budget::RETRY_AFTER_SECS),
    );
    res
}

fn message_body(status: u16, msg: &str) -> String {
    format!("<h1>{status}</h1><p class=\"error\">{}</p>", esc(msg))
}

async fn thumb(State(app): State<Arc<App>>, Path((index, k)): Path<(u64, usize)>) -> Response {
    match app.thumb(index, k).await {
        Ok(t) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            t,
        )
            .into_response(),
        // An image (so the card shows it in place) that says what went wrong.
        Err(ThumbError::Busy(msg)) => busy(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "image/svg+xml")],
                error_svg(&msg),
            )
                .into_response(),
        ),
        Err(ThumbError::Failed(msg)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            [(header::CONTENT_TYPE, "image/svg+xml")],
            error_svg(&msg),
        )
            .into_response(),
    }
}

fn error_svg(msg: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"256\" height=\"64\" viewBox=\"0 0 256 64\">\
         <rect width=\"256\" height=\"64\" fill=\"#fde8e8\"/><text x=\"8\" y=\"24\" font-size=\"12\" \
         fill=\"#900\">cannot show this image</text><text x=\"8\" y=\"44\" font-size=\"9\" fill=\"#900\">\
         <title>{0}</title>{1}</text></svg>",
        esc(msg),
        esc(&crate::html::truncate(msg, 48))
    )
}

async fn stats(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let n = q
        .get("sample")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SAMPLE)
        .min(MAX_SAMPLE);
    let seed = q
        .get("seed")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let sampled = app.sampled(n, seed).await;
    let body = stats_html(&app.ds, &sampled, seed);
    html(
        StatusCode::OK,
        page("Statistics", &app.name, Nav::Stats, &body),
    )
}

async fn static_file(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "style.css" => (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=600"),
            ],
            STYLE,
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn not_found(State(app): State<Arc<App>>) -> Response {
    let body = "<h1>404</h1><p>Nothing here: the app serves the gallery (/), record pages \
                (/record/N), images, thumbnails and statistics (/stats).</p>";
    html(
        StatusCode::NOT_FOUND,
        page("Not found", &app.name, Nav::Record, body),
    )
}

/// The inline stylesheet of the static report (the report is one file).
pub fn style() -> &'static str {
    STYLE
}
