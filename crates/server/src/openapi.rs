//! The OpenAPI 3.1 document of `GET /openapi.json`, generated from the route table and the enums of
//! the library, so a new route, category or next action appears in it without anyone editing it.

use payerr::{Actor, Category, MatchedBy, NextAction, Outcome};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::api::{JSON, PROMETHEUS};
use crate::api_error::ErrorType;
use crate::config::ServeConfig;
use crate::routes::{Route, ROUTES};

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The JSON spellings of an enum, from its serde form.
fn names<T: Serialize>(all: &[T]) -> Value {
    Value::Array(
        all.iter()
            .map(|v| serde_json::to_value(v).unwrap_or_default())
            .collect(),
    )
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}

/// An object schema with every listed property required and no others.
fn object(properties: Value, optional: &[&str]) -> Value {
    let required: Vec<&String> = properties
        .as_object()
        .map(|p| {
            p.keys()
                .filter(|k| !optional.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// Properties of a decision (payerr's `Decision`), merged into the schemas that flatten one.
fn with_decision(mut properties: Value) -> Value {
    if let Some(map) = properties.as_object_mut() {
        map.extend(decision().as_object().cloned().unwrap_or_default());
    }
    properties
}

fn decision() -> Value {
    json!({
        "outcome": schema_ref("Outcome"),
        "next_action": schema_ref("NextAction"),
        "retryable": { "type": "boolean" },
        "failover_safe": { "type": "boolean" },
        "actor": schema_ref("Actor"),
        "http_status": { "type": "integer", "minimum": 100, "maximum": 599 },
    })
}

fn text() -> Value {
    object(json!({ "en": string(), "zh": string() }), &[])
}

fn schemas(config: &ServeConfig) -> Value {
    let string_list = json!({ "type": "array", "items": string() });
    json!({
        "Outcome": { "type": "string", "enum": names(Outcome::ALL),
            "description": "What happened to the operation at the provider. `unknown`: it may have been executed; query it, never re-submit under a new key." },
        "Category": { "type": "string", "enum": names(Category::ALL) },
        "NextAction": { "type": "string", "enum": names(NextAction::ALL) },
        "Actor": { "type": "string", "enum": names(Actor::ALL) },
        "MatchedBy": { "type": "string", "enum": names(MatchedBy::ALL) },
        "Text": text(),
        "Source": object(json!({
            "code": nullable("string"),
            "message": nullable("string"),
            "type": string(),
            "status": string(),
            "reason": string(),
            "http_status": { "type": ["integer", "null"] },
        }), &["type", "status", "reason"]),
        "Candidate": object(json!({
            "provider_code": string(),
            "scope": string(),
            "reason": string(),
            "provider_message": string(),
            "code": string(),
            "category": schema_ref("Category"),
            "outcome": schema_ref("Outcome"),
            "next_action": schema_ref("NextAction"),
        }), &["scope", "reason"]),
        "Verdict": object(with_decision(json!({
            "dialect": string(),
            "category": schema_ref("Category"),
            "code": { "type": "string", "description": "Canonical code (docs/taxonomy.md)." },
            "message": { "type": "string", "description": "Safe to show the customer, in the language asked for." },
            "retry_after_ms": { "type": ["integer", "null"], "minimum": 0 },
            "param": nullable("string"),
            "how_to_fix": nullable("string"),
            "matched_by": schema_ref("MatchedBy"),
            "ambiguous": { "type": "array", "items": schema_ref("Candidate") },
            "source": schema_ref("Source"),
            "detail": nullable("string"),
        })), &[]),
        "Error": object(json!({
            "type": { "type": "string", "enum": names(ErrorType::ALL) },
            "code": string(),
            "message": string(),
            "param": nullable("string"),
        }), &[]),
        "BatchItemError": object(json!({ "error": schema_ref("Error") }), &[]),
        "NormalizeRequest": object(json!({
            "dialect": { "type": "string", "default": "auto",
                "description": "A dialect id, or `auto` to detect it." },
            "http_status": { "type": "integer", "minimum": 100, "maximum": 599 },
            "headers": { "type": "object", "additionalProperties": string(),
                "description": "The provider's response headers; Retry-After and Date are read." },
            "body": { "description": "The provider's body: a JSON string is the body's text, any other JSON value is the body itself." },
            "lang": { "type": "string", "description": "Language for this item; wins over ?lang= and the headers." },
        }), &["dialect", "headers", "lang"]),
        "NormalizeBatch": { "type": "array", "items": schema_ref("NormalizeRequest"),
            "maxItems": config.max_batch_items },
        "BatchResults": { "type": "array",
            "items": { "oneOf": [schema_ref("Verdict"), schema_ref("BatchItemError")] } },
        "DialectSummary": object(json!({
            "id": string(), "name": string(), "description": string(),
            "source": nullable("string"),
            "entries": { "type": "integer", "minimum": 0 },
            "ranges": { "type": "integer", "minimum": 0 },
            "status_rules": { "type": "integer", "minimum": 0 },
        }), &[]),
        "Envelope": object(json!({
            "containers": string_list, "code": string_list, "message": string_list,
            "scope": string_list, "status": string_list, "reason": string_list,
            "param": string_list,
            "code_format": { "type": "string", "enum": ["text", "numeric"] },
        }), &[]),
        "CatalogRule": object(with_decision(json!({
            "selector": string(), "canonical": string(), "category": schema_ref("Category"),
        })), &[]),
        "CatalogEntry": object(with_decision(json!({
            "code": string(), "scope": string(), "reason": string(), "status": string(),
            "message": string(), "remedy": schema_ref("Text"),
            "canonical": string(), "category": schema_ref("Category"),
            "text": schema_ref("Text"), "customer_message": schema_ref("Text"),
            "param_in_message": { "type": "boolean" },
        })), &["scope", "reason", "status", "remedy"]),
        "Dialect": object(json!({
            "id": string(), "name": string(), "description": string(),
            "source": nullable("string"),
            "envelope": schema_ref("Envelope"),
            "ranges": { "type": "array", "items": schema_ref("CatalogRule") },
            "status_rules": { "type": "array", "items": schema_ref("CatalogRule") },
            "entries": { "type": "array", "items": schema_ref("CatalogEntry") },
        }), &[]),
        "CategoryInfo": object(with_decision(json!({
            "category": schema_ref("Category"),
            "description": string(),
            "codes": string_list,
        })), &[]),
        "SearchHit": object(json!({
            "dialect": string(), "code": string(),
            "type": nullable("string"), "reason": nullable("string"),
            "provider_message": string(), "text": string(), "how_to_fix": string(),
            "canonical_code": string(), "category": schema_ref("Category"),
            "outcome": schema_ref("Outcome"), "next_action": schema_ref("NextAction"),
            "score": { "type": "integer", "minimum": 0 },
        }), &[]),
        "SearchResults": object(json!({
            "query": string(),
            "total": { "type": "integer", "minimum": 0 },
            "results": { "type": "array", "items": schema_ref("SearchHit") },
        }), &[]),
        "Health": object(json!({ "status": { "const": "ok" } }), &[]),
        "Ready": object(json!({
            "status": { "const": "ready" },
            "dialects": { "type": "integer", "minimum": 0 },
        }), &[]),
        "OpenApi": { "type": "object", "description": "This document." },
    })
}

/// The 200 answer of a route: its content type and schema.
fn success(route: Route) -> (&'static str, Value) {
    let schema = match route {
        Route::Normalize | Route::DialectCode => schema_ref("Verdict"),
        Route::NormalizeBatch => schema_ref("BatchResults"),
        Route::Dialects => json!({ "type": "array", "items": schema_ref("DialectSummary") }),
        Route::Dialect => schema_ref("Dialect"),
        Route::Categories => json!({ "type": "array", "items": schema_ref("CategoryInfo") }),
        Route::Search => schema_ref("SearchResults"),
        Route::OpenApi => schema_ref("OpenApi"),
        Route::Healthz => schema_ref("Health"),
        Route::Readyz => schema_ref("Ready"),
        Route::Metrics => return (PROMETHEUS, string()),
    };
    (JSON, schema)
}

/// The error statuses a route can answer, each with what causes it.
fn failures(route: Route, limited: bool) -> Vec<(u16, &'static str)> {
    let mut statuses = vec![(400, "Invalid request: an unknown query parameter, a malformed body or field (`param` names it).")];
    match route {
        Route::Normalize | Route::NormalizeBatch => statuses.extend([
            (413, "The body is larger than `max_body_bytes`."),
            (
                415,
                "The body is not JSON (`Content-Type` other than application/json or +json).",
            ),
        ]),
        Route::Dialect | Route::DialectCode => {
            statuses.push((404, "`dialect_not_found` or `code_not_found`."))
        }
        Route::Readyz => statuses.push((503, "`shutting_down`: the service is draining.")),
        _ => {}
    }
    statuses.push((
        408,
        "`request_timeout`: the request was not received and answered in `request_timeout_ms`.",
    ));
    if limited {
        statuses.push((429, "`too_many_requests`: `max_concurrency` requests are in flight; retry after Retry-After."));
    }
    statuses.push((
        500,
        "`internal_error`: a defect; X-Request-Id finds it in the logs.",
    ));
    statuses
}

fn parameter(name: &str, location: &str) -> Value {
    let (description, schema, required) = match name {
        "lang" => ("Language of the texts: en or zh (zh_CN, zh-Hans, en_US…). Wins over the Language and Accept-Language headers; unknown tags fall back to English.", string(), false),
        "type" => ("Scope of the code (typed-error's `type`, e.g. payment_error).", string(), false),
        "reason" => ("Reason text selecting one meaning of a code documented twice (portone's status_reason).", string(), false),
        "q" => ("Words to find (all must match): a code, words of a message or remedy, in English or Chinese.", json!({ "type": "string", "minLength": 1 }), true),
        "dialect" => ("Only entries of this dialect.", string(), false),
        "limit" => ("Most results returned (1–100, default 20).", json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20 }), false),
        "id" => ("Dialect id (GET /v1/dialects lists them).", string(), true),
        "code" => ("The provider's code, e.g. 1004, expired_card, INVALID_SIGNATURE.", string(), true),
        _ => ("", string(), false),
    };
    json!({ "name": name, "in": location, "required": required, "description": description, "schema": schema })
}

fn header_parameter(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "header", "required": false, "description": description, "schema": string() })
}

fn operation(spec: &crate::routes::RouteSpec) -> Value {
    let mut parameters: Vec<Value> = spec
        .template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| parameter(name, "path"))
        .chain(spec.query.iter().map(|name| parameter(name, "query")))
        .collect();
    if spec.query.contains(&"lang") {
        parameters.push(header_parameter(
            "Language",
            "Seed 001 style language, e.g. zh_CN or en_US.",
        ));
        parameters.push(header_parameter(
            "Accept-Language",
            "Standard language negotiation.",
        ));
    }
    parameters.push(header_parameter(
        "X-Request-Id",
        "Echoed back when it is 1–128 characters of [A-Za-z0-9._:-]; otherwise the service makes one.",
    ));
    let request_id = json!({ "X-Request-Id": {
        "description": "The request's id, also in the service's log line for it.",
        "schema": string(),
    }});
    let (content_type, schema) = success(spec.route);
    let mut responses = Map::new();
    responses.insert(
        "200".to_owned(),
        json!({
            "description": "OK",
            "headers": request_id,
            "content": { content_type: { "schema": schema } },
        }),
    );
    for (status, description) in failures(spec.route, spec.limited) {
        responses.insert(
            status.to_string(),
            json!({
                "description": description,
                "headers": request_id,
                "content": { JSON: { "schema": schema_ref("Error") } },
            }),
        );
    }
    let mut op = json!({
        "operationId": spec.operation_id,
        "summary": spec.summary,
        "parameters": parameters,
        "responses": responses,
    });
    let body = match spec.route {
        Route::Normalize => Some(schema_ref("NormalizeRequest")),
        Route::NormalizeBatch => Some(schema_ref("NormalizeBatch")),
        _ => None,
    };
    if let Some(schema) = body {
        op["requestBody"] = json!({ "required": true, "content": { JSON: { "schema": schema } } });
    }
    op
}

/// The whole document for a service running with `config`.
pub fn document(config: &ServeConfig) -> Value {
    let mut paths = Map::new();
    for spec in ROUTES {
        paths.insert(
            spec.template.to_owned(),
            json!({ spec.method.to_ascii_lowercase(): operation(spec) }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "payerr",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One verdict for every payment provider's error dialect. Errors of the service itself are `{type, code, message, param}` (seed 000's format); any path answers 404 `route_not_found` when unknown and 405 `method_not_allowed` (with Allow) for a wrong method, in the same shape. HEAD is accepted wherever GET is. docs/http.md has the details.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "paths": paths,
        "components": {
            "schemas": schemas(config),
            "responses": {
                "Error": {
                    "description": "Any error of the service: 404 and 405 on every path too.",
                    "content": { JSON: { "schema": schema_ref("Error") } },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_references_resolvable() {
        let doc = document(&ServeConfig::default());
        for spec in ROUTES {
            let op = &doc["paths"][spec.template][spec.method.to_ascii_lowercase()];
            assert_eq!(op["operationId"], spec.operation_id);
        }
        let text = doc.to_string();
        for name in text.split("#/components/schemas/").skip(1) {
            let name = name.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
        assert_eq!(
            doc["components"]["schemas"]["NormalizeBatch"]["maxItems"],
            1000
        );
    }
}
