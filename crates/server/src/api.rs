//! The endpoints' handlers: plain functions from a decoded request to a reply, with no I/O, so the
//! server module alone deals with sockets, limits and time.

use bytes::Bytes;
use hyper::header::HeaderMap;
use payerr::taxonomy::Decision;
use payerr::{Category, Engine, ErrorKind, Lang, Options, Response, ResponseInput, Verdict};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::api_error::ApiError;
use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::routes::{Query, Route};
use crate::search::SearchIndex;

/// What one catalog load serves: the engine and the search index built from it, swapped together on
/// reload so a request sees one consistent version.
#[derive(Debug)]
pub struct Catalogs {
    /// The engine.
    pub engine: Engine,
    /// Search over its entries.
    pub search: SearchIndex,
}

impl Catalogs {
    /// Builds the search index for `engine`.
    pub fn new(engine: Engine) -> Catalogs {
        let search = SearchIndex::build(&engine);
        Catalogs { engine, search }
    }
}

/// A successful answer (always 200: anything else is an [`ApiError`]).
#[derive(Debug)]
pub struct Reply {
    /// `application/json` or the Prometheus text type.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
}

/// Content type of JSON answers.
pub const JSON: &str = "application/json";
/// Content type of `/metrics`.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Reply {
    fn json(value: &impl Serialize) -> Result<Reply, ApiError> {
        let mut body = Vec::new();
        serde_json::to_writer(&mut body, value).map_err(|_| ApiError::internal())?;
        Ok(Reply::bytes(JSON, body))
    }

    /// A 200 answer of the given type.
    pub fn bytes(content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply {
            content_type,
            body: body.into(),
        }
    }
}

/// One request, decoded.
pub struct Request<'a> {
    /// Path parameters in template order.
    pub params: Vec<String>,
    /// Query parameters.
    pub query: Query,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The body (empty for GET).
    pub body: Bytes,
}

/// What the handlers may read besides the request.
pub struct Context<'a> {
    /// The catalogs in service for this request.
    pub catalogs: &'a Catalogs,
    /// Settings.
    pub config: &'a ServeConfig,
    /// Metrics, for verdict counts and `/metrics`.
    pub metrics: &'a Metrics,
    /// The OpenAPI document, built once at start.
    pub openapi: &'a Bytes,
    /// Shutting down: `/readyz` says so.
    pub draining: bool,
    /// Log lines dropped so far, for `/metrics`.
    pub log_lines_dropped: u64,
}

/// Answers a request.
pub fn dispatch(route: Route, cx: &Context<'_>, req: &Request<'_>) -> Result<Reply, ApiError> {
    req.query.only(route.spec().query)?;
    match route {
        Route::Normalize => normalize(cx, req),
        Route::NormalizeBatch => normalize_batch(cx, req),
        Route::Dialects => dialects(cx),
        Route::Dialect => dialect(cx, req),
        Route::DialectCode => code(cx, req),
        Route::Categories => categories(cx),
        Route::Search => search(cx, req),
        Route::OpenApi => Ok(Reply::bytes(JSON, cx.openapi.clone())),
        Route::Healthz => Ok(Reply::bytes(JSON, &b"{\"status\":\"ok\"}"[..])),
        Route::Readyz => ready(cx),
        Route::Metrics => Ok(Reply::bytes(
            PROMETHEUS,
            cx.metrics.render(cx.log_lines_dropped),
        )),
    }
}

/// The language: the item's `lang`, `?lang=`, the caller's `Language` (seed 001 style) and
/// `Accept-Language` headers, then the provider response's own (as the CLI reads them); English
/// when none is known.
fn lang(req: &Request<'_>, item_lang: Option<&str>, response: Option<&Response<'_>>) -> Lang {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    item_lang
        .or(req.query.get("lang"))
        .and_then(Lang::parse)
        .or_else(|| header("language").and_then(Lang::parse))
        .or_else(|| header("accept-language").and_then(Lang::from_accept_language))
        .unwrap_or_else(|| response.map(Response::language).unwrap_or_default())
}

fn normalize_one(cx: &Context<'_>, req: &Request<'_>, raw: &[u8]) -> Result<Verdict, ApiError> {
    let input = ResponseInput::parse(raw)?;
    let response = input.response();
    let options = Options {
        dialect: Some(input.dialect.as_deref().unwrap_or("auto")),
        lang: lang(req, input.lang.as_deref(), Some(&response)),
    };
    cx.catalogs
        .engine
        .normalize(&response, &options)
        .map_err(|e| match e.kind() {
            ErrorKind::UnknownDialect => ApiError::invalid_parameter("dialect", e.to_string()),
            _ => ApiError::internal(),
        })
}

fn normalize(cx: &Context<'_>, req: &Request<'_>) -> Result<Reply, ApiError> {
    let verdict = normalize_one(cx, req, &req.body)?;
    cx.metrics.verdicts([&verdict]);
    let mut body = Vec::with_capacity(1024);
    verdict.write_json(&mut body);
    Ok(Reply::bytes(JSON, body))
}

/// A batch item that could not be normalized.
#[derive(Serialize)]
struct ItemError<'a> {
    error: &'a ApiError,
}

fn normalize_batch(cx: &Context<'_>, req: &Request<'_>) -> Result<Reply, ApiError> {
    let items: Vec<&RawValue> = serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("expected a JSON array of {{dialect?, http_status, headers?, body, lang?}} objects: {e}"),
        )
    })?;
    let limit = cx.config.max_batch_items;
    if items.len() > limit {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "the batch has {} items; at most {limit} are accepted",
                items.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(items.len() * 768 + 2);
    let mut verdicts = Vec::with_capacity(items.len());
    out.push(b'[');
    for (i, raw) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match normalize_one(cx, req, raw.get().as_bytes()) {
            Ok(verdict) => {
                verdict.write_json(&mut out);
                verdicts.push(verdict);
            }
            Err(error) => serde_json::to_writer(&mut out, &ItemError { error: &error })
                .map_err(|_| ApiError::internal())?,
        }
    }
    out.push(b']');
    cx.metrics.verdicts(&verdicts);
    Ok(Reply::bytes(JSON, out))
}

/// A dialect in the list.
#[derive(Serialize)]
struct DialectSummary<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    source: Option<&'a str>,
    entries: usize,
    ranges: usize,
    status_rules: usize,
}

fn dialects(cx: &Context<'_>) -> Result<Reply, ApiError> {
    let list: Vec<DialectSummary<'_>> = cx
        .catalogs
        .engine
        .dialects()
        .map(|d| DialectSummary {
            id: &d.id,
            name: &d.name,
            description: &d.description,
            source: d.source.as_deref(),
            entries: d.entries.len(),
            ranges: d.ranges.len(),
            status_rules: d.status_rules.len(),
        })
        .collect();
    Reply::json(&list)
}

fn find_dialect<'a>(engine: &'a Engine, id: &str) -> Result<&'a payerr::Dialect, ApiError> {
    engine.dialect(id).ok_or_else(|| {
        ApiError::not_found(
            "dialect_not_found",
            format!("no dialect {id:?}; GET /v1/dialects lists them"),
        )
    })
}

fn dialect(cx: &Context<'_>, req: &Request<'_>) -> Result<Reply, ApiError> {
    let dialect = find_dialect(&cx.catalogs.engine, &req.params[0])?;
    Reply::json(&payerr::export::to_json(dialect))
}

fn code(cx: &Context<'_>, req: &Request<'_>) -> Result<Reply, ApiError> {
    let engine = &cx.catalogs.engine;
    let (id, code) = (&req.params[0], req.params[1].trim());
    let dialect = find_dialect(engine, id)?;
    let scope = req.query.get("type").filter(|t| !t.is_empty());
    let documented = match scope {
        Some(scope) => dialect
            .entries_for(code)
            .any(|e| e.scope.as_deref() == Some(scope)),
        None => dialect.knows(code) || dialect.range_for(code).is_some(),
    };
    if !documented {
        let under = scope
            .map(|s| format!(" under type {s:?}"))
            .unwrap_or_default();
        return Err(ApiError::not_found(
            "code_not_found",
            format!("{id} documents no code {code:?}{under}"),
        ));
    }
    let verdict = engine
        .explain(
            id,
            code,
            scope,
            req.query.get("reason"),
            lang(req, None, None),
        )
        .map_err(|_| ApiError::internal())?;
    Reply::json(&verdict)
}

/// A category with its default decision and canonical codes.
#[derive(Serialize)]
struct CategoryView<'a> {
    category: Category,
    description: &'a str,
    #[serde(flatten)]
    decision: Decision,
    codes: Vec<&'a str>,
}

fn categories(cx: &Context<'_>) -> Result<Reply, ApiError> {
    let taxonomy = cx.catalogs.engine.taxonomy();
    let codes = taxonomy.codes();
    let list: Vec<CategoryView<'_>> = taxonomy
        .categories()
        .iter()
        .map(|c| CategoryView {
            category: c.category,
            description: &c.description,
            decision: c.decision,
            codes: codes
                .iter()
                .filter(|code| code.category == c.category)
                .map(|code| &*code.code)
                .collect(),
        })
        .collect();
    Reply::json(&list)
}

/// Default and largest `?limit=` of a search.
const SEARCH_LIMIT: (usize, usize) = (20, 100);

#[derive(Serialize)]
struct SearchResults<'a> {
    query: &'a str,
    total: usize,
    results: Vec<crate::search::Hit<'a>>,
}

fn search(cx: &Context<'_>, req: &Request<'_>) -> Result<Reply, ApiError> {
    let query = req
        .query
        .get("q")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::missing_parameter("q"))?;
    let limit = match req.query.get("limit") {
        None => SEARCH_LIMIT.0,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=SEARCH_LIMIT.1).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_parameter(
                    "limit",
                    format!("limit must be an integer from 1 to {}", SEARCH_LIMIT.1),
                )
            })?,
    };
    let dialect = req.query.get("dialect");
    if let Some(id) = dialect {
        cx.catalogs
            .engine
            .require_dialect(id)
            .map_err(|e| ApiError::invalid_parameter("dialect", e.to_string()))?;
    }
    let (total, results) = cx
        .catalogs
        .search
        .search(query, dialect, lang(req, None, None), limit);
    Reply::json(&SearchResults {
        query,
        total,
        results,
    })
}

fn ready(cx: &Context<'_>) -> Result<Reply, ApiError> {
    if cx.draining {
        return Err(ApiError::shutting_down());
    }
    #[derive(Serialize)]
    struct Ready {
        status: &'static str,
        dialects: usize,
    }
    Reply::json(&Ready {
        status: "ready",
        dialects: cx.catalogs.engine.dialects().count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_turns_503_while_draining_and_health_stays_ok() {
        let catalogs = Catalogs::new(Engine::builtin().unwrap());
        let (config, metrics, openapi) = (ServeConfig::default(), Metrics::default(), Bytes::new());
        let headers = HeaderMap::new();
        let request = Request {
            params: Vec::new(),
            query: Query::default(),
            headers: &headers,
            body: Bytes::new(),
        };
        for draining in [false, true] {
            let cx = Context {
                catalogs: &catalogs,
                config: &config,
                metrics: &metrics,
                openapi: &openapi,
                draining,
                log_lines_dropped: 0,
            };
            let ready = dispatch(Route::Readyz, &cx, &request);
            match ready {
                Ok(reply) => {
                    assert!(!draining);
                    assert_eq!(&reply.body[..], br#"{"status":"ready","dialects":6}"#);
                }
                Err(e) => {
                    assert!(draining);
                    assert_eq!((e.status().as_u16(), e.code), (503, "shutting_down"));
                }
            }
            assert!(dispatch(Route::Healthz, &cx, &request).is_ok());
        }
    }
}
