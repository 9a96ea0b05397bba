//! The documentation stands alone and in step with the code: docs/PROTOCOL.md
//! names exactly the OpenAPI description's routes, its frames and error codes, and
//! no document of the repository points outside it (a clone has no `../shared`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chat_tests::TestApp;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

async fn description() -> Value {
    let app = TestApp::sqlite().await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    app.shutdown().await;
    spec
}

/// `METHOD /path` of every operation of the description.
fn operations(spec: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    out
}

/// The `type` values of a oneOf frame schema.
fn frame_types(spec: &Value, schema: &str) -> Vec<String> {
    spec["components"]["schemas"][schema]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} is a oneOf"))
        .iter()
        .filter_map(|variant| variant["properties"]["type"]["enum"][0].as_str())
        .map(str::to_owned)
        .collect()
}

fn enum_values(spec: &Value, schema: &str) -> Vec<String> {
    spec["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} is an enum"))
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The calls the protocol page's tables (first column) and headings name:
/// `` `GET /rooms/{room_id}` ``,
/// `` `GET /docs`, `GET /redoc` and `GET /docs/assets/{file}` ``, `` `WS /ws/chat/…` ``.
fn documented_operations(page: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in page.lines().filter(|l| l.starts_with("| `") || l.starts_with('#')) {
        let first_cell =
            if line.starts_with('#') { line } else { line.split('|').nth(1).unwrap_or_default() };
        for code in first_cell.split('`').skip(1).step_by(2) {
            let Some((method, rest)) = code.split_once(' ') else { continue };
            if !matches!(method, "GET" | "POST" | "PATCH" | "DELETE" | "PUT" | "WS") {
                continue;
            }
            let path = rest.split(['?', ' ']).next().unwrap_or_default();
            let method = if method == "WS" { "GET" } else { method };
            out.insert(format!("{method} {path}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_page_and_the_openapi_description_name_the_same_api() {
    let spec = description().await;
    let page = read("docs/PROTOCOL.md");
    let described = operations(&spec);
    let documented = documented_operations(&page);
    let undocumented: Vec<&String> = described.difference(&documented).collect();
    assert!(undocumented.is_empty(), "docs/PROTOCOL.md leaves out {undocumented:?}");
    let unknown: Vec<&String> = documented.difference(&described).collect();
    assert!(unknown.is_empty(), "docs/PROTOCOL.md names calls the service lacks: {unknown:?}");

    for schema in ["ClientFrame", "ServerFrame"] {
        let types = frame_types(&spec, schema);
        assert!(types.len() >= 3, "{schema}: {types:?}");
        for kind in types {
            assert!(
                page.contains(&format!("{{\"type\": \"{kind}\"")),
                "docs/PROTOCOL.md shows the {schema} `{kind}`"
            );
        }
    }
    for schema in ["ErrorCode", "FrameErrorCode"] {
        for code in enum_values(&spec, schema) {
            assert!(
                page.contains(&format!("`{code}`")),
                "docs/PROTOCOL.md explains {schema} `{code}`"
            );
        }
    }
}

/// Markdown files of the repository that people read (not dependencies or build output).
fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules" | ".git") {
                    walk(&path, out);
                }
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    out
}

#[test]
fn no_document_points_outside_the_repository() {
    let documents = documents();
    assert!(documents.len() >= 4, "{documents:?}");
    for path in documents {
        let text = std::fs::read_to_string(&path).unwrap();
        for needle in ["../shared", "shared/API", "API.md"] {
            assert!(!text.contains(needle), "{} mentions {needle}", path.display());
        }
        // Relative links resolve to files of the repository.
        let dir = path.parent().unwrap();
        for link in text.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            if link.contains("://") || link.starts_with('#') || link.starts_with("mailto:") {
                continue;
            }
            let target = link.split('#').next().unwrap_or_default();
            assert!(dir.join(target).exists(), "{}: the link {link} leads nowhere", path.display());
        }
    }
}
