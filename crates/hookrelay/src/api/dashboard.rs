//! The dashboard: a static single-page app (vanilla ES modules under `crates/hookrelay/dashboard/`)
//! embedded in the binary, served at `GET /` and `GET /dashboard/{asset}` with strict headers.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;

/// Where the page may load from: only this origin, no inline script or style, no framing. The
/// dashboard shows payloads and errors written by strangers, so even if some text did reach the
/// DOM as markup, the browser would refuse to run it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// One embedded file: its path under `/dashboard/` (empty for the page itself), type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../dashboard/", $path)),
        }
    };
}

/// Every file the dashboard is made of; anything else under `/dashboard/` is a 404.
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("app.js", JS),
    asset!("charts.js", JS),
    asset!("vendor/uplot/uPlot.esm.js", JS),
    asset!("vendor/uplot/uPlot.min.css", CSS),
    asset!("portal.js", JS),
    asset!("views/portal-links.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("stream.js", JS),
    asset!("views/overview.js", JS),
    asset!("views/deliveries.js", JS),
    asset!("views/dlq.js", JS),
    asset!("views/events.js", JS),
    asset!("views/webhooks.js", JS),
    asset!("views/sources.js", JS),
    asset!("views/forms.js", JS),
    asset!("views/webhook-edit.js", JS),
    asset!("views/source-edit.js", JS),
    asset!("views/event-types.js", JS),
    asset!("views/settings.js", JS),
    asset!("csv.js", JS),
    asset!("views/replay.js", JS),
];

/// Strong validators, computed once: a content hash, so an upgraded binary changes them.
fn etags() -> &'static [HeaderValue] {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = hex::encode(Sha256::digest(a.body));
                HeaderValue::from_str(&format!("\"{}\"", &digest[..32]))
                    .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
            })
            .collect()
    })
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/portal", get(portal))
        .route("/dashboard/{*path}", get(asset))
}

#[utoipa::path(get, path = "/", tag = "dashboard", operation_id = "dashboard.index",
    responses((status = 200, content_type = "text/html", description = "the dashboard page (sign in with a dashboard account or an API key); its scripts and styles are under `/dashboard/`"),
              (status = 304, description = "unchanged since the `ETag` sent in `If-None-Match`")))]
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

#[utoipa::path(get, path = "/portal", tag = "dashboard", operation_id = "dashboard.portal",
    responses((status = 200, content_type = "text/html", description = "the dashboard in portal mode: opened from a portal link (`/portal#token=hrp_…`), it shows only that tenant's webhooks, deliveries and dead letters, with the link's role"),
              (status = 304, description = "unchanged since the `ETag` sent in `If-None-Match`")))]
pub async fn portal(headers: HeaderMap) -> Response {
    // The same page: it reads the token from the address's fragment, which never reaches a
    // server log, and switches to portal mode itself.
    serve("index.html", &headers)
}

#[utoipa::path(get, path = "/dashboard/{path}", tag = "dashboard", operation_id = "dashboard.asset",
    params(("path" = String, Path, description = "e.g. `app.js`, `app.css`, `views/deliveries.js`")),
    responses((status = 200, description = "a script (`text/javascript`), the stylesheet (`text/css`), an image (`image/svg+xml`) or the page (`text/html`)",
               content((String = "text/javascript"), (String = "text/css"), (String = "image/svg+xml"), (String = "text/html"))),
              (status = 304, description = "unchanged since the `ETag` sent in `If-None-Match`"),
              (status = 404, description = "`not_found`: no such asset")))]
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// The headers every dashboard answer carries, the 404 included.
fn protect(response: &mut Response) {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        // Revalidate every time (cheap with the ETag), so an upgrade is seen on the next load.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    for (name, value) in set {
        headers.insert(name, value);
    }
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.path == path) else {
        let mut response =
            ApiError::NotFound(format!("no dashboard asset {path:?}")).into_response();
        protect(&mut response);
        return response;
    };
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let mut response = if if_none_match(request, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    response.headers_mut().insert(header::ETAG, etag.clone());
    protect(&mut response);
    response
}

/// Whether the client's `If-None-Match` names this version (weak comparison, as RFC 9110 asks).
fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(wanted) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ours = etag.to_str().unwrap_or_default();
    wanted
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_path_and_an_etag() {
        let mut paths: Vec<_> = ASSETS.iter().map(|a| a.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len());
        assert_eq!(etags().len(), ASSETS.len());
        assert!(etags().iter().all(|e| e.len() == 34));
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let etag = HeaderValue::from_static("\"abc\"");
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_static(v));
            if_none_match(&h, &etag)
        };
        assert!(with("\"abc\""));
        assert!(with("W/\"abc\""));
        assert!(with("\"x\", \"abc\""));
        assert!(with("*"));
        assert!(!with("\"abd\""));
        assert!(!if_none_match(&HeaderMap::new(), &etag));
    }
}
