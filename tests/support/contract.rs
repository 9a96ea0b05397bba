//! The OpenAPI description as a test oracle: finds the operation of a request,
//! checks that the response's status is documented, that its documented headers
//! are there, and that its JSON body validates against the documented schema —
//! strictly, refusing any field a schema does not declare — and records which
//! operations were exercised.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use reqwest::{Method, Response};
use serde_json::{Map, Value, json};

pub struct Contract {
    pub spec: Value,
    /// The spec with every object schema closed (`additionalProperties: false`).
    strict_components: Value,
    /// (operationId, status) seen so far.
    seen: Mutex<BTreeSet<(String, u16)>>,
}

/// The operation documented for a request.
pub struct Operation<'a> {
    pub id: String,
    pub template: String,
    pub value: &'a Value,
}

impl Contract {
    pub fn new(spec: Value) -> Self {
        let mut components = spec["components"].clone();
        close_objects(&mut components);
        Self { spec, strict_components: components, seen: Mutex::new(BTreeSet::new()) }
    }

    /// Every `(method, path template)` of the description.
    pub fn operations(&self) -> Vec<(Method, String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.spec["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
                let id = operation["operationId"].as_str().expect("operationId").to_owned();
                out.push((method, path.clone(), id));
            }
        }
        out
    }

    /// The operation whose template matches `path` (literal segments beat parameters).
    pub fn operation(&self, method: &Method, path: &str) -> Operation<'_> {
        let path = path.split('?').next().unwrap_or_default();
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, &String, &Value)> = None;
        for (template, item) in self.spec["paths"].as_object().expect("paths") {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let matches = parts.iter().zip(&segments).all(|(t, s)| {
                if t.starts_with('{') {
                    !s.is_empty()
                } else {
                    literal += 1;
                    t == s
                }
            });
            let Some(operation) = item.get(method.as_str().to_lowercase()) else { continue };
            if matches && best.is_none_or(|(n, _, _)| literal > n) {
                best = Some((literal, template, operation));
            }
        }
        let (_, template, value) =
            best.unwrap_or_else(|| panic!("{method} {path} is not in the OpenAPI description"));
        let id = value["operationId"].as_str().expect("operationId").to_owned();
        Operation { id, template: template.clone(), value }
    }

    /// The documented response of an operation for a status (following `$ref`s).
    pub fn documented_response(&self, operation: &Operation<'_>, status: u16) -> Value {
        let responses = &operation.value["responses"];
        let response = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .unwrap_or_else(|| {
                panic!(
                    "{} ({}) answered {status}, which its description does not list: {}",
                    operation.id,
                    operation.template,
                    responses
                        .as_object()
                        .map(|r| r.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                )
            });
        match response.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().expect("ref name");
                self.spec["components"]["responses"][name].clone()
            }
            None => response.clone(),
        }
    }

    /// Checks a response of `method path` against the description; returns its
    /// JSON body (`Value::Null` when it has none).
    pub async fn check(&self, method: Method, path: &str, response: Response) -> Value {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("response body");
        let operation = self.operation(&method, path);
        let documented = self.documented_response(&operation, status);
        let context = format!("{method} {path} ({}) → {status}", operation.id);
        for name in documented["headers"].as_object().into_iter().flat_map(Map::keys) {
            assert!(headers.contains_key(name.as_str()), "{context}: header {name} is missing");
        }
        let content = documented["content"].as_object().cloned().unwrap_or_default();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.seen.lock().expect("lock").insert((operation.id.clone(), status));
        if content.is_empty() {
            assert!(body.is_empty(), "{context}: documented without a body, got {body:?}");
            return Value::Null;
        }
        let media = content
            .keys()
            .find(|media| content_type.starts_with(media.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{context}: content type {content_type:?} is not one of {:?}",
                    content.keys()
                )
            });
        if media != "application/json" {
            return Value::Null;
        }
        let json: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{context}: body is not JSON ({e}): {body:?}"));
        self.validate(&content[media]["schema"], &json, &context);
        json
    }

    /// Records a status seen outside HTTP (101 from a socket upgrade) after
    /// checking that it is documented.
    pub fn check_status(&self, method: Method, path: &str, status: u16) {
        let operation = self.operation(&method, path);
        self.documented_response(&operation, status);
        self.seen.lock().expect("lock").insert((operation.id, status));
    }

    /// Validates `instance` against `schema` (which may `$ref` the components), strictly.
    pub fn validate(&self, schema: &Value, instance: &Value, context: &str) {
        let errors = self.errors(schema, instance);
        assert!(
            errors.is_empty(),
            "{context}: {instance}\ndoes not match {schema}:\n{}",
            errors.join("\n")
        );
    }

    /// What is wrong with `instance` against `schema`; empty when it is valid.
    pub fn errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let mut schema = schema.clone();
        close_objects(&mut schema);
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [schema],
            "components": self.strict_components,
        });
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema compiles: {e}"));
        validator
            .iter_errors(instance)
            .map(|e| format!("  at {}: {e}", e.instance_path()))
            .collect()
    }

    /// The schema of a component, by name, as a `$ref`.
    pub fn component(name: &str) -> Value {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// `(operationId, status)` pairs exercised so far, by operation.
    pub fn seen(&self) -> BTreeMap<String, BTreeSet<u16>> {
        let mut out: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        for (id, status) in self.seen.lock().expect("lock").iter() {
            out.entry(id.clone()).or_default().insert(*status);
        }
        out
    }
}

/// Closes every object schema that lists its properties, so a field the
/// description does not declare fails validation.
fn close_objects(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".to_owned(), Value::Bool(false));
            }
            for child in map.values_mut() {
                close_objects(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}
