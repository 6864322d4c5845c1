//! A small JSON Schema validator: the 2020-12 subset used by the schemas of an OpenAPI 3.1 document.
//!
//! Checked keywords: `$ref` (local `#/...` pointers into the document), `type`, `properties`,
//! `required`, `additionalProperties`, `items`, `enum`, `const`, `oneOf`, `anyOf`, `minimum`,
//! `maximum`, `minItems`, `maxItems`, `minLength`, `maxLength`. Annotations (`description`,
//! `title`, `format`, `example`, `examples`, `default`, `deprecated`, `readOnly`, `writeOnly`,
//! `$comment`, `x-*`) are skipped. Any other keyword is an error in [`validate`] and is listed by
//! [`unsupported_keywords`], so a constraint is never silently ignored.

use serde_json::{json, Map, Number, Value};

/// Keywords that constrain, all checked by [`validate`].
const CHECKED: &[&str] = &[
    "$ref",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "oneOf",
    "anyOf",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
];

/// Keywords that describe and never constrain.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "format",
    "example",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// Deeper than this, a schema is assumed to be a `$ref` cycle.
const MAX_DEPTH: usize = 200;

fn known(keyword: &str) -> bool {
    CHECKED.contains(&keyword) || ANNOTATIONS.contains(&keyword) || keyword.starts_with("x-")
}

/// Why a check failed: the value does not match, or the schema itself cannot be applied.
enum Fail {
    Invalid(String),
    Schema(String),
}

type Check = Result<(), Fail>;

fn invalid(path: &str, message: impl std::fmt::Display) -> Fail {
    Fail::Invalid(format!("{path}: {message}"))
}

fn unusable(path: &str, message: impl std::fmt::Display) -> Fail {
    Fail::Schema(format!("{path}: {message}"))
}

/// Checks `value` against `schema`; `doc` (the whole OpenAPI document) resolves `$ref`s.
///
/// The error starts with the JSON path of the failing value, e.g.
/// `$.results[3].category: "foo" is not one of ["a","b"]`. A schema this validator cannot apply
/// (unknown keyword, unresolvable `$ref`, malformed keyword) is an error too, even inside `oneOf`.
pub fn validate(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    check(doc, schema, value, "$", 0).map_err(|fail| match fail {
        Fail::Invalid(message) => message,
        Fail::Schema(message) => format!("unusable schema at {message}"),
    })
}

fn check(doc: &Value, schema: &Value, value: &Value, path: &str, depth: usize) -> Check {
    if depth > MAX_DEPTH {
        return Err(unusable(path, "schemas nest too deep (a $ref cycle?)"));
    }
    let schema = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(invalid(path, "no value is allowed here")),
        Value::Object(schema) => schema,
        other => return Err(unusable(path, format!("not a schema: {}", show(other)))),
    };
    if let Some(keyword) = schema.keys().find(|k| !known(k)) {
        return Err(unusable(path, format!("unsupported keyword {keyword:?}")));
    }
    if let Some(reference) = schema.get("$ref") {
        check(doc, resolve(doc, reference, path)?, value, path, depth + 1)?;
    }
    if let Some(types) = schema.get("type") {
        check_type(types, value, path)?;
    }
    if let Some(allowed) = schema.get("enum") {
        let allowed = allowed
            .as_array()
            .ok_or_else(|| unusable(path, "enum is not an array"))?;
        if !allowed.iter().any(|a| same(a, value)) {
            let allowed = show(&Value::Array(allowed.clone()));
            return Err(invalid(
                path,
                format!("{} is not one of {allowed}", show(value)),
            ));
        }
    }
    if let Some(constant) = schema.get("const") {
        if !same(constant, value) {
            let (value, constant) = (show(value), show(constant));
            return Err(invalid(
                path,
                format!("{value} is not the constant {constant}"),
            ));
        }
    }
    match value {
        Value::Number(n) => check_number(schema, n, path)?,
        Value::String(s) => {
            let length = s.chars().count();
            bounds(
                schema,
                "minLength",
                "maxLength",
                length,
                "string length",
                path,
            )?;
        }
        Value::Array(items) => {
            bounds(
                schema,
                "minItems",
                "maxItems",
                items.len(),
                "array length",
                path,
            )?;
            if let Some(item) = schema.get("items") {
                if item.is_array() {
                    return Err(unusable(path, "array-form items (use prefixItems)"));
                }
                for (i, v) in items.iter().enumerate() {
                    check(doc, item, v, &format!("{path}[{i}]"), depth + 1)?;
                }
            }
        }
        Value::Object(object) => check_object(doc, schema, object, path, depth)?,
        Value::Null | Value::Bool(_) => {}
    }
    if let Some(alternatives) = schema.get("anyOf") {
        let (matched, errors) = try_each(doc, alternatives, "anyOf", value, path, depth)?;
        if matched.is_empty() {
            let (value, errors) = (show(value), errors.join("; "));
            return Err(invalid(
                path,
                format!("{value} matches no anyOf alternative ({errors})"),
            ));
        }
    }
    if let Some(alternatives) = schema.get("oneOf") {
        let (matched, errors) = try_each(doc, alternatives, "oneOf", value, path, depth)?;
        match matched.len() {
            1 => {}
            0 => {
                let (value, errors) = (show(value), errors.join("; "));
                let message = format!("{value} matches no oneOf alternative ({errors})");
                return Err(invalid(path, message));
            }
            n => {
                let matched: Vec<String> = matched.iter().map(|i| format!("#{i}")).collect();
                let message = format!(
                    "{} matches {n} oneOf alternatives ({}); exactly one must match",
                    show(value),
                    matched.join(", ")
                );
                return Err(invalid(path, message));
            }
        }
    }
    Ok(())
}

fn resolve<'a>(doc: &'a Value, reference: &Value, path: &str) -> Result<&'a Value, Fail> {
    let reference = reference
        .as_str()
        .ok_or_else(|| unusable(path, "$ref is not a string"))?;
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| unusable(path, format!("$ref {reference:?} is not local (#/...)")))?;
    doc.pointer(pointer)
        .ok_or_else(|| unusable(path, format!("$ref {reference:?} does not resolve")))
}

fn check_type(types: &Value, value: &Value, path: &str) -> Check {
    let names: Vec<&str> = match types {
        Value::String(name) => vec![name],
        Value::Array(names) => names
            .iter()
            .map(|n| {
                n.as_str()
                    .ok_or_else(|| unusable(path, "type names a non-string"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(unusable(path, "type is neither a string nor an array")),
    };
    let mut matched = false;
    for name in &names {
        matched |= match *name {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            "number" => value.is_number(),
            "integer" => value.as_number().is_some_and(integral),
            other => return Err(unusable(path, format!("unknown type {other:?}"))),
        };
    }
    if matched {
        return Ok(());
    }
    let message = format!(
        "expected {}, got {} {}",
        names.join(" or "),
        type_name(value),
        show(value)
    );
    Err(invalid(path, message))
}

fn check_number(schema: &Map<String, Value>, n: &Number, path: &str) -> Check {
    let x = n.as_f64().unwrap_or(f64::NAN);
    if let Some(min) = number(schema, "minimum", path)? {
        if x < min {
            return Err(invalid(path, format!("{n} is less than the minimum {min}")));
        }
    }
    if let Some(max) = number(schema, "maximum", path)? {
        if x > max {
            return Err(invalid(path, format!("{n} is more than the maximum {max}")));
        }
    }
    Ok(())
}

/// Checks `length` against the `min` and `max` keywords, when present.
fn bounds(
    schema: &Map<String, Value>,
    min: &str,
    max: &str,
    length: usize,
    what: &str,
    path: &str,
) -> Check {
    if let Some(limit) = count(schema, min, path)? {
        if length < limit {
            return Err(invalid(
                path,
                format!("{what} {length} is below {min} {limit}"),
            ));
        }
    }
    if let Some(limit) = count(schema, max, path)? {
        if length > limit {
            return Err(invalid(
                path,
                format!("{what} {length} is above {max} {limit}"),
            ));
        }
    }
    Ok(())
}

fn check_object(
    doc: &Value,
    schema: &Map<String, Value>,
    object: &Map<String, Value>,
    path: &str,
    depth: usize,
) -> Check {
    if let Some(required) = schema.get("required") {
        let required = required
            .as_array()
            .ok_or_else(|| unusable(path, "required is not an array"))?;
        for name in required {
            let name = name
                .as_str()
                .ok_or_else(|| unusable(path, "required names a non-string"))?;
            if !object.contains_key(name) {
                return Err(invalid(path, format!("missing required property {name:?}")));
            }
        }
    }
    let properties = match schema.get("properties") {
        None => None,
        Some(Value::Object(properties)) => Some(properties),
        Some(_) => return Err(unusable(path, "properties is not an object")),
    };
    for (key, v) in object {
        let child = child_path(path, key);
        if let Some(property) = properties.and_then(|p| p.get(key)) {
            check(doc, property, v, &child, depth + 1)?;
        } else if let Some(additional) = schema.get("additionalProperties") {
            if additional == &Value::Bool(false) {
                let message = "property is not allowed (additionalProperties is false)";
                return Err(invalid(&child, message));
            }
            check(doc, additional, v, &child, depth + 1)?;
        }
    }
    Ok(())
}

/// Checks `value` against each alternative of `oneOf`/`anyOf`: the indices that match and the
/// errors of those that do not. An unusable alternative fails the whole check.
fn try_each(
    doc: &Value,
    alternatives: &Value,
    keyword: &str,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<(Vec<usize>, Vec<String>), Fail> {
    let alternatives = alternatives
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| unusable(path, format!("{keyword} is not a non-empty array")))?;
    let (mut matched, mut errors) = (Vec::new(), Vec::new());
    for (i, alternative) in alternatives.iter().enumerate() {
        match check(doc, alternative, value, path, depth + 1) {
            Ok(()) => matched.push(i),
            Err(Fail::Invalid(message)) => errors.push(format!("#{i}: {message}")),
            Err(fail) => return Err(fail),
        }
    }
    Ok((matched, errors))
}

fn number(schema: &Map<String, Value>, keyword: &str, path: &str) -> Result<Option<f64>, Fail> {
    match schema.get(keyword) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| unusable(path, format!("{keyword} is not a number"))),
    }
}

fn count(schema: &Map<String, Value>, keyword: &str, path: &str) -> Result<Option<usize>, Fail> {
    match schema.get(keyword) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| unusable(path, format!("{keyword} is not a non-negative integer"))),
    }
}

/// JSON Schema equality: numbers compare by value (`1` equals `1.0`), objects ignore key order.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (int(x), int(y)) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn int(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn integral(n: &Number) -> bool {
    int(n).is_some()
        || n.as_f64()
            .is_some_and(|x| x.is_finite() && x.fract() == 0.0)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if integral(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compact JSON, cut short when long.
fn show(value: &Value) -> String {
    const MAX: usize = 200;
    let text = value.to_string();
    if text.chars().count() <= MAX {
        return text;
    }
    let mut cut: String = text.chars().take(MAX).collect();
    cut.push('…');
    cut
}

/// `$.a`, `$.a[0]`, `$["not an identifier"]`.
fn child_path(parent: &str, key: &str) -> String {
    let identifier = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", json!(key))
    }
}

/// The JSON paths of every keyword [`validate`] does not know, in every schema of the document:
/// `components.schemas`, the `content.*.schema` of `components.responses`/`requestBodies`,
/// parameters (`schema` or `content`), response headers, and the same places under
/// `paths.*.*` (request bodies, responses, operation- and path-level parameters).
/// Subschemas are walked; `$ref`s are not followed (their targets are walked in place).
pub fn unsupported_keywords(doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let components = doc.get("components");
    let at = child_path("$", "components");
    let section = |name: &str| (components.and_then(|c| c.get(name)), child_path(&at, name));

    let (schemas, path) = section("schemas");
    for (name, schema) in entries(schemas) {
        walk_schema(schema, &child_path(&path, name), &mut found);
    }
    let (responses, path) = section("responses");
    for (name, response) in entries(responses) {
        walk_response(response, &child_path(&path, name), &mut found);
    }
    let (bodies, path) = section("requestBodies");
    for (name, body) in entries(bodies) {
        walk_content(body, &child_path(&path, name), &mut found);
    }
    let (parameters, path) = section("parameters");
    for (name, parameter) in entries(parameters) {
        walk_parameter(parameter, &child_path(&path, name), &mut found);
    }

    let paths = child_path("$", "paths");
    for (template, item) in entries(doc.get("paths")) {
        let item_path = child_path(&paths, template);
        for (key, operation) in entries(Some(item)) {
            let path = child_path(&item_path, key);
            if key == "parameters" {
                walk_parameters(operation, &path, &mut found);
                continue;
            }
            if let Some(body) = operation.get("requestBody") {
                walk_content(body, &child_path(&path, "requestBody"), &mut found);
            }
            let responses = child_path(&path, "responses");
            for (status, response) in entries(operation.get("responses")) {
                walk_response(response, &child_path(&responses, status), &mut found);
            }
            if let Some(parameters) = operation.get("parameters") {
                walk_parameters(parameters, &child_path(&path, "parameters"), &mut found);
            }
        }
    }
    found
}

/// The entries of an object; nothing for anything else.
fn entries(value: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    value.and_then(Value::as_object).into_iter().flatten()
}

fn walk_schema(schema: &Value, path: &str, found: &mut Vec<String>) {
    for (keyword, v) in entries(Some(schema)) {
        let path = child_path(path, keyword);
        match keyword.as_str() {
            "properties" => {
                for (name, property) in entries(Some(v)) {
                    walk_schema(property, &child_path(&path, name), found);
                }
            }
            "items" if v.is_array() => found.push(path),
            "additionalProperties" | "items" => walk_schema(v, &path, found),
            "oneOf" | "anyOf" => {
                for (i, alternative) in v.as_array().into_iter().flatten().enumerate() {
                    walk_schema(alternative, &format!("{path}[{i}]"), found);
                }
            }
            _ if known(keyword) => {}
            _ => found.push(path),
        }
    }
}

/// The schemas under `content.*.schema` of a response, request body or parameter.
fn walk_content(holder: &Value, path: &str, found: &mut Vec<String>) {
    let content = child_path(path, "content");
    for (media_type, media) in entries(holder.get("content")) {
        if let Some(schema) = media.get("schema") {
            let path = child_path(&child_path(&content, media_type), "schema");
            walk_schema(schema, &path, found);
        }
    }
}

fn walk_response(response: &Value, path: &str, found: &mut Vec<String>) {
    walk_content(response, path, found);
    let headers = child_path(path, "headers");
    for (name, header) in entries(response.get("headers")) {
        walk_parameter(header, &child_path(&headers, name), found);
    }
}

fn walk_parameters(parameters: &Value, path: &str, found: &mut Vec<String>) {
    for (i, parameter) in parameters.as_array().into_iter().flatten().enumerate() {
        walk_parameter(parameter, &format!("{path}[{i}]"), found);
    }
}

/// A parameter or header: a `schema`, or a `content` map.
fn walk_parameter(parameter: &Value, path: &str, found: &mut Vec<String>) {
    if let Some(schema) = parameter.get("schema") {
        walk_schema(schema, &child_path(path, "schema"), found);
    }
    walk_content(parameter, path, found);
}

/// The JSON schema of the `application/json` response to `method path_template` with `status`:
/// `paths[path_template][method].responses[status]`, falling back to the `"2XX"`-style range,
/// then to `"default"`. A response-level `$ref` (e.g. `#/components/responses/Error`) is resolved.
pub fn response_schema<'a>(
    doc: &'a Value,
    path_template: &str,
    method: &str,
    status: u16,
) -> Option<&'a Value> {
    let responses = doc
        .get("paths")?
        .get(path_template)?
        .get(method.to_ascii_lowercase().as_str())?
        .get("responses")?;
    let response = responses
        .get(status.to_string().as_str())
        .or_else(|| responses.get(format!("{}XX", status / 100).as_str()))
        .or_else(|| responses.get("default"))?;
    let response = match response.get("$ref").and_then(Value::as_str) {
        Some(reference) => doc.pointer(reference.strip_prefix('#')?)?,
        None => response,
    };
    response
        .get("content")?
        .get("application/json")?
        .get("schema")
}

// The validator's own tests; they run in the test binary that declares this module.

#[test]
fn schema_type_mismatch_names_the_path_and_both_types() {
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    let error = validate(&json!({}), &schema, &json!({"n": "7"})).unwrap_err();
    assert_eq!(error, r#"$.n: expected integer, got string "7""#);
    let error = validate(&json!({}), &json!({"type": "object"}), &json!([1])).unwrap_err();
    assert_eq!(error, "$: expected object, got array [1]");
    let nullable = json!({"type": ["string", "null"]});
    assert!(validate(&json!({}), &nullable, &json!(null)).is_ok());
    assert!(validate(&json!({}), &nullable, &json!("x")).is_ok());
    let error = validate(&json!({}), &nullable, &json!(false)).unwrap_err();
    assert_eq!(error, "$: expected string or null, got boolean false");
}

#[test]
fn schema_nested_required_property_missing() {
    let schema = json!({
        "type": "object",
        "required": ["outer"],
        "properties": {"outer": {"type": "object", "required": ["name", "id"]}},
    });
    let ok = json!({"outer": {"name": "a", "id": 1}});
    assert!(validate(&json!({}), &schema, &ok).is_ok());
    let error = validate(&json!({}), &schema, &json!({"outer": {"name": "a"}})).unwrap_err();
    assert_eq!(error, r#"$.outer: missing required property "id""#);
    let error = validate(&json!({}), &schema, &json!({})).unwrap_err();
    assert_eq!(error, r#"$: missing required property "outer""#);
}

#[test]
fn schema_additional_properties() {
    let closed = json!({"properties": {"a": {}}, "additionalProperties": false});
    assert!(validate(&json!({}), &closed, &json!({"a": 1})).is_ok());
    let error = validate(&json!({}), &closed, &json!({"a": 1, "b c": 2})).unwrap_err();
    assert_eq!(
        error,
        r#"$["b c"]: property is not allowed (additionalProperties is false)"#
    );
    let typed = json!({"additionalProperties": {"type": "string"}});
    assert!(validate(&json!({}), &typed, &json!({"x": "y"})).is_ok());
    let error = validate(&json!({}), &typed, &json!({"x": 1})).unwrap_err();
    assert_eq!(error, "$.x: expected string, got integer 1");
    // Without the keyword, extra properties are allowed.
    assert!(validate(&json!({}), &json!({"properties": {}}), &json!({"z": 0})).is_ok());
}

#[test]
fn schema_one_of_requires_exactly_one_match() {
    let schema = json!({"oneOf": [{"type": "number"}, {"type": "integer"}]});
    assert!(validate(&json!({}), &schema, &json!(1.5)).is_ok());
    let error = validate(&json!({}), &schema, &json!(3)).unwrap_err();
    assert_eq!(
        error,
        "$: 3 matches 2 oneOf alternatives (#0, #1); exactly one must match"
    );
    let error = validate(&json!({}), &schema, &json!("3")).unwrap_err();
    assert!(error.starts_with(r#"$: "3" matches no oneOf alternative (#0: $: expected number"#));
    let any = json!({"anyOf": [{"type": "number"}, {"type": "integer"}]});
    assert!(validate(&json!({}), &any, &json!(3)).is_ok());
    assert!(validate(&json!({}), &any, &json!(null)).is_err());
}

#[test]
fn schema_ref_resolution() {
    let doc = json!({"components": {"schemas": {
        "Item": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
        "List": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
    }}});
    let schema = json!({"$ref": "#/components/schemas/List"});
    assert!(validate(&doc, &schema, &json!([{"id": 1}, {"id": 2}])).is_ok());
    let error = validate(&doc, &schema, &json!([{"id": 1}, {"id": "2"}])).unwrap_err();
    assert_eq!(error, r#"$[1].id: expected integer, got string "2""#);
    let missing = json!({"$ref": "#/components/schemas/Nope"});
    let error = validate(&doc, &missing, &json!(1)).unwrap_err();
    assert!(error.contains("does not resolve"), "{error}");
    let cycle = json!({"components": {"schemas": {"A": {"$ref": "#/components/schemas/A"}}}});
    let error = validate(
        &cycle,
        &json!({"$ref": "#/components/schemas/A"}),
        &json!(1),
    );
    assert!(error.unwrap_err().contains("too deep"));
}

#[test]
fn schema_enum_and_const() {
    let schema = json!({"enum": ["a", "b", 1]});
    assert!(validate(&json!({}), &schema, &json!("a")).is_ok());
    assert!(validate(&json!({}), &schema, &json!(1.0)).is_ok());
    let error = validate(&json!({}), &schema, &json!("c")).unwrap_err();
    assert_eq!(error, r#"$: "c" is not one of ["a","b",1]"#);
    let constant = json!({"const": {"k": [1, 2]}});
    assert!(validate(&json!({}), &constant, &json!({"k": [1, 2]})).is_ok());
    let error = validate(&json!({}), &constant, &json!({"k": [2, 1]})).unwrap_err();
    assert_eq!(error, r#"$: {"k":[2,1]} is not the constant {"k":[1,2]}"#);
}

#[test]
fn schema_integer_versus_number() {
    let integer = json!({"type": "integer"});
    let number = json!({"type": "number"});
    assert!(validate(&json!({}), &integer, &json!(3)).is_ok());
    assert!(validate(&json!({}), &integer, &json!(-3)).is_ok());
    assert!(validate(&json!({}), &integer, &json!(u64::MAX)).is_ok());
    assert!(validate(&json!({}), &integer, &json!(3.0)).is_ok());
    let error = validate(&json!({}), &integer, &json!(3.5)).unwrap_err();
    assert_eq!(error, "$: expected integer, got number 3.5");
    assert!(validate(&json!({}), &number, &json!(3)).is_ok());
    assert!(validate(&json!({}), &number, &json!(3.5)).is_ok());
    assert!(validate(&json!({}), &number, &json!("3")).is_err());
}

#[test]
fn schema_error_path_text() {
    let doc = json!({"components": {"schemas": {
        "Category": {"type": "string", "enum": ["card_expired", "insufficient_funds"]},
    }}});
    let schema = json!({
        "type": "object",
        "properties": {"results": {"type": "array", "items": {
            "type": "object",
            "properties": {"category": {"$ref": "#/components/schemas/Category"}},
        }}},
    });
    let value = json!({"results": [
        {"category": "card_expired"},
        {},
        {"category": "insufficient_funds"},
        {"category": "foo"},
    ]});
    let error = validate(&doc, &schema, &value).unwrap_err();
    assert_eq!(
        error,
        r#"$.results[3].category: "foo" is not one of ["card_expired","insufficient_funds"]"#
    );
}

#[test]
fn schema_bounds() {
    let schema = json!({
        "properties": {
            "n": {"minimum": 1, "maximum": 10},
            "s": {"minLength": 2, "maxLength": 3},
            "a": {"minItems": 1, "maxItems": 2},
        },
    });
    let ok = json!({"n": 10, "s": "日本", "a": [0]});
    assert!(validate(&json!({}), &schema, &ok).is_ok());
    let error = validate(&json!({}), &schema, &json!({"n": 0.5})).unwrap_err();
    assert_eq!(error, "$.n: 0.5 is less than the minimum 1");
    let error = validate(&json!({}), &schema, &json!({"n": 11})).unwrap_err();
    assert_eq!(error, "$.n: 11 is more than the maximum 10");
    let error = validate(&json!({}), &schema, &json!({"s": "abcd"})).unwrap_err();
    assert_eq!(error, "$.s: string length 4 is above maxLength 3");
    let error = validate(&json!({}), &schema, &json!({"a": []})).unwrap_err();
    assert_eq!(error, "$.a: array length 0 is below minItems 1");
}

#[test]
fn schema_unsupported_keywords_are_errors_and_listed() {
    let doc = json!({
        "components": {"schemas": {"Code": {
            "type": "object",
            "description": "annotations are fine",
            "x-internal": true,
            "properties": {
                "pattern": {"type": "string", "pattern": "^[a-z]+$"},
                "list": {"type": "array", "items": {"allOf": [{}]}},
            },
        }}},
        "paths": {"/v1/codes/{code}": {
            "parameters": [{"name": "code", "in": "path", "schema": {"type": "string", "minLength": 1}}],
            "get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"oneOf": [{"$ref": "#/components/schemas/Code"}, {"nullable": true}]},
            }}}}},
        }},
    });
    assert_eq!(
        unsupported_keywords(&doc),
        vec![
            "$.components.schemas.Code.properties.list.items.allOf",
            "$.components.schemas.Code.properties.pattern.pattern",
            r#"$.paths["/v1/codes/{code}"].get.responses["200"].content["application/json"].schema.oneOf[1].nullable"#,
        ]
    );
    let schema = json!({"$ref": "#/components/schemas/Code"});
    let error = validate(&doc, &schema, &json!({"pattern": "x"})).unwrap_err();
    assert_eq!(
        error,
        r#"unusable schema at $.pattern: unsupported keyword "pattern""#
    );
}

#[test]
fn schema_response_schema_lookup() {
    let doc = json!({
        "components": {"responses": {"Problem": {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Problem"},
        }}}}},
        "paths": {"/v1/normalize": {"post": {"responses": {
            "200": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "4XX": {"$ref": "#/components/responses/Problem"},
            "default": {"content": {"application/json": {"schema": {"type": "null"}}}},
        }}}},
    });
    let ok = response_schema(&doc, "/v1/normalize", "POST", 200);
    assert_eq!(ok, Some(&json!({"type": "object"})));
    let problem = response_schema(&doc, "/v1/normalize", "post", 422);
    assert_eq!(
        problem,
        Some(&json!({"$ref": "#/components/schemas/Problem"}))
    );
    let other = response_schema(&doc, "/v1/normalize", "post", 500);
    assert_eq!(other, Some(&json!({"type": "null"})));
    assert_eq!(response_schema(&doc, "/v1/normalize", "get", 200), None);
    assert_eq!(response_schema(&doc, "/v1/nope", "post", 200), None);
}
