//! The built-in chat page on the real router: `/` is HTML under a strict
//! Content-Security-Policy, every asset it references is served with its
//! content type, ETags revalidate, and unknown paths keep the JSON 404.

use chat_tests::{TestApp, assert_error};
use reqwest::{Method, Response};

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The `/ui/…` paths a text references (`src="/ui/app.js"`, `url("/ui/icon.svg")`).
fn asset_references(text: &str) -> Vec<String> {
    text.match_indices("/ui/")
        .map(|(at, _)| {
            text[at..].chars().take_while(|c| !matches!(c, '"' | '\'' | ')' | ' ')).collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_html_under_a_strict_content_security_policy() {
    let app = TestApp::sqlite().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8");
    let csp = header(&response, "content-security-policy").to_owned();
    for directive in
        ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "cache-control"), "no-cache");
    assert!(header(&response, "etag").starts_with('"'), "a strong ETag");
    assert!(!header(&response, "x-request-id").is_empty(), "the API's conventions hold here too");

    let html = response.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..40]);
    for (at, _) in html.match_indices("<script") {
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(tag.contains("src=\"/ui/"), "no inline script: {tag}");
    }
    let inline_handler = html.match_indices(" on").find(|(at, _)| {
        let rest = &html[at + 3..];
        let name = rest.chars().take_while(char::is_ascii_alphabetic).count();
        name > 0 && rest[name..].starts_with('=')
    });
    assert_eq!(inline_handler, None, "no inline event handlers");
    assert!(!html.contains("style=\""), "no inline styles (style-src 'self')");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_referenced_asset_is_served_with_its_content_type() {
    let app = TestApp::sqlite().await;
    let html = app.get("/").await.text().await.unwrap();
    let css = app.get("/ui/style.css").await.text().await.unwrap();
    let mut referenced = asset_references(&html);
    referenced.extend(asset_references(&css));
    referenced.sort();
    referenced.dedup();
    assert_eq!(referenced, ["/ui/app.js", "/ui/icon.svg", "/ui/style.css"]);

    for (path, content_type) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{path}");
        assert!(!header(&response, "content-security-policy").is_empty(), "{path}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path} has a body");
    }
    let head = app.client.request(Method::HEAD, app.url("/ui/app.js")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-type"), "text/javascript; charset=utf-8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_etag_gets_an_empty_304() {
    let app = TestApp::sqlite().await;
    let first = app.get("/ui/app.js").await;
    let etag = header(&first, "etag").to_owned();
    let again =
        app.client.get(app.url("/ui/app.js")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert_eq!(header(&again, "cache-control"), "no-cache");
    assert!(again.bytes().await.unwrap().is_empty());

    let stale = app
        .client
        .get(app.url("/ui/app.js"))
        .header("if-none-match", "\"0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200, "another version gets the bytes");
    let page = app.get("/").await;
    assert_ne!(header(&page, "etag"), etag, "each file has its own ETag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_keep_the_json_404() {
    let app = TestApp::sqlite().await;
    assert_error(app.get("/ui/missing.js").await, 404, "not_found").await;
    assert_error(app.get("/ui").await, 404, "not_found").await;
    assert_error(app.get("/index.html").await, 404, "not_found").await;
    assert_error(app.post("/", serde_json::json!({})).await, 405, "method_not_allowed").await;
    let rooms = app.get("/rooms").await;
    assert_eq!(rooms.status(), 200);
    assert_eq!(header(&rooms, "content-type"), "application/json", "the API is unchanged");
}

/// The documentation pages claim to work offline: their scripts fetch nothing
/// from another host (ReDoc's bundle loads its footer logo from a CDN unless the
/// service swaps it out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_scripts_fetch_nothing_from_a_cdn() {
    let app = TestApp::sqlite().await;
    let redoc = app.get("/docs/assets/redoc.standalone.js").await;
    assert_eq!(redoc.status(), 200);
    let bundle = redoc.text().await.unwrap();
    assert!(bundle.len() > 1_000_000, "the whole bundle is served");
    assert!(bundle.contains("redocly logo"), "the footer logo is still there, as an empty image");
    for script in
        [bundle, app.get("/docs/assets/swagger-initializer.js").await.text().await.unwrap()]
    {
        assert!(!script.contains("cdn.redoc.ly") && !script.contains("cdn.jsdelivr"), "no CDN");
        assert!(!script.contains("validator.swagger.io"), "no online validator");
    }
}
