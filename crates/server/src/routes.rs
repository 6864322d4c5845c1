//! The one table of routes: the router matches requests against it and the OpenAPI document is
//! generated from it, so the two cannot disagree.

use hyper::Method;

use crate::api_error::ApiError;

/// An endpoint of the service. Declared in the order of [`ROUTES`], so a route is its own index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/normalize`
    Normalize,
    /// `POST /v1/normalize/batch`
    NormalizeBatch,
    /// `GET /v1/dialects`
    Dialects,
    /// `GET /v1/dialects/{id}`
    Dialect,
    /// `GET /v1/dialects/{id}/codes/{code}`
    DialectCode,
    /// `GET /v1/categories`
    Categories,
    /// `GET /v1/search`
    Search,
    /// `GET /openapi.json`
    OpenApi,
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
}

/// How a route is served and described.
#[derive(Debug)]
pub struct RouteSpec {
    /// The endpoint.
    pub route: Route,
    /// `GET` (HEAD is accepted too) or `POST`.
    pub method: &'static str,
    /// Path with `{name}` segments; also the metrics label.
    pub template: &'static str,
    /// OpenAPI `operationId`.
    pub operation_id: &'static str,
    /// One line for people.
    pub summary: &'static str,
    /// Counted against `max_concurrency`; probes and metrics are not, so they answer under overload.
    pub limited: bool,
    /// Query parameters accepted; any other is refused, so a typo (`?lnag=zh`) is not ignored.
    pub query: &'static [&'static str],
}

macro_rules! routes {
    ($($route:ident $method:literal $template:literal $op:literal $limited:literal [$($q:literal),*] $summary:literal;)*) => {
        /// Every route, in the order the OpenAPI document lists them.
        pub const ROUTES: &[RouteSpec] = &[$(RouteSpec {
            route: Route::$route,
            method: $method,
            template: $template,
            operation_id: $op,
            summary: $summary,
            limited: $limited,
            query: &[$($q),*],
        },)*];
    };
}

routes! {
    Normalize "POST" "/v1/normalize" "normalize" true ["lang"]
        "Normalize one provider response into the canonical verdict.";
    NormalizeBatch "POST" "/v1/normalize/batch" "normalizeBatch" true ["lang"]
        "Normalize an array of provider responses; verdicts or per-item errors, in the same order.";
    Dialects "GET" "/v1/dialects" "listDialects" true []
        "List the dialects in service (built-in and user catalogs).";
    Dialect "GET" "/v1/dialects/{id}" "getDialect" true []
        "One dialect's whole catalog: envelope, rules and every entry with its decision.";
    DialectCode "GET" "/v1/dialects/{id}/codes/{code}" "explainCode" true ["type", "reason", "lang"]
        "The verdict a dialect gives one documented code, without a response.";
    Categories "GET" "/v1/categories" "listCategories" true []
        "The categories with their default decisions and canonical codes.";
    Search "GET" "/v1/search" "search" true ["q", "dialect", "limit", "lang"]
        "Ranked search over codes, messages and remedies, in English and Chinese, across dialects.";
    OpenApi "GET" "/openapi.json" "openapi" false []
        "This document.";
    Healthz "GET" "/healthz" "health" false []
        "Liveness: the process answers.";
    Readyz "GET" "/readyz" "ready" false []
        "Readiness: catalogs loaded and not shutting down.";
    Metrics "GET" "/metrics" "metrics" false []
        "Prometheus metrics: requests by route and status, latency histograms, verdicts.";
}

impl Route {
    /// The route's entry in [`ROUTES`].
    pub fn spec(self) -> &'static RouteSpec {
        // The table lists every variant in declaration order (a unit test checks it).
        &ROUTES[self as usize]
    }
}

/// Matches a request to a route and its decoded path parameters; 404 or 405 otherwise.
pub fn resolve(method: &Method, path: &str) -> Result<(Route, Vec<String>), ApiError> {
    let mut wrong_method = None;
    for spec in ROUTES {
        let Some(params) = match_template(spec.template, path) else {
            continue;
        };
        let accepted =
            method.as_str() == spec.method || (spec.method == "GET" && method == Method::HEAD);
        if accepted {
            return Ok((spec.route, params?));
        }
        wrong_method = Some(spec);
    }
    Err(match wrong_method {
        Some(spec) => ApiError::method_not_allowed(
            method.as_str(),
            path,
            if spec.method == "GET" {
                "GET, HEAD"
            } else {
                spec.method
            },
        ),
        None => ApiError::not_found(
            "route_not_found",
            format!("no endpoint at {path}; GET /openapi.json lists them"),
        ),
    })
}

/// `None` when the path does not have the template's shape; `Some(Err)` when it does but a parameter
/// is not valid percent-encoded UTF-8.
fn match_template(template: &str, path: &str) -> Option<Result<Vec<String>, ApiError>> {
    let mut params = Vec::new();
    let mut segments = path.split('/');
    for part in template.split('/') {
        let segment = segments.next()?;
        if part.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            params.push(segment);
        } else if part != segment {
            return None;
        }
    }
    if segments.next().is_some() {
        return None;
    }
    Some(
        params
            .into_iter()
            .map(|p| {
                percent_decode(p, false)
                    .ok_or_else(|| ApiError::invalid_parameter(p, "malformed percent-encoding"))
            })
            .collect(),
    )
}

/// Decodes `%XX` escapes (and `+` as a space in query strings); `None` when the result is not UTF-8
/// or an escape is malformed.
pub fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A decoded query string.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=2`; a malformed escape is a 400 naming the parameter.
    pub fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let mut pairs = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name, true)
                .ok_or_else(|| ApiError::invalid_parameter(name, "malformed percent-encoding"))?;
            let value = percent_decode(value, true)
                .ok_or_else(|| ApiError::invalid_parameter(&name, "malformed percent-encoding"))?;
            pairs.push((name, value));
        }
        Ok(Query(pairs))
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses parameters the endpoint does not know, so a typo (`?lnag=zh`) is not silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some((k, _)) => Err(ApiError::invalid_parameter(
                k,
                if known.is_empty() {
                    format!("unknown query parameter {k}; this endpoint takes none")
                } else {
                    format!(
                        "unknown query parameter {k}; this endpoint takes {}",
                        known.join(", ")
                    )
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_table_once_at_its_own_index() {
        for (i, spec) in ROUTES.iter().enumerate() {
            assert_eq!(spec.route as usize, i, "{spec:?}");
        }
        let mut templates: Vec<_> = ROUTES.iter().map(|s| s.template).collect();
        templates.dedup();
        assert_eq!(templates.len(), ROUTES.len());
    }

    #[test]
    fn paths_resolve_with_decoded_parameters() {
        let (route, params) = resolve(&Method::GET, "/v1/dialects/portone/codes/A%20B").unwrap();
        assert_eq!(route, Route::DialectCode);
        assert_eq!(params, ["portone", "A B"]);
        assert_eq!(
            resolve(&Method::HEAD, "/healthz").unwrap().0,
            Route::Healthz
        );
        assert_eq!(
            resolve(&Method::POST, "/v1/normalize/batch").unwrap().0,
            Route::NormalizeBatch
        );
    }

    #[test]
    fn wrong_paths_are_404_and_wrong_methods_405() {
        let e = resolve(&Method::GET, "/v1/normalize").unwrap_err();
        assert_eq!((e.status.as_u16(), e.allow), (405, Some("POST")));
        let e = resolve(&Method::DELETE, "/v1/dialects").unwrap_err();
        assert_eq!((e.status.as_u16(), e.allow), (405, Some("GET, HEAD")));
        for path in [
            "/",
            "/v1",
            "/v1/dialects/",
            "/v1/dialects/x/codes",
            "/healthz/x",
        ] {
            let e = resolve(&Method::GET, path).unwrap_err();
            assert_eq!(e.code, "route_not_found", "{path}");
        }
        let e = resolve(&Method::GET, "/v1/dialects/%FF").unwrap_err();
        assert_eq!(e.code, "invalid_parameter");
    }

    #[test]
    fn queries_decode_plus_and_utf8_and_refuse_unknown_names() {
        let q = Query::parse(Some("q=%E4%BD%99%E9%A2%9D+%E4%B8%8D%E8%B6%B3&lang=zh&flag")).unwrap();
        assert_eq!(q.get("q"), Some("余额 不足"));
        assert_eq!(q.get("flag"), Some(""));
        assert!(q.only(&["q", "lang", "flag"]).is_ok());
        assert_eq!(q.only(&["q"]).unwrap_err().param.as_deref(), Some("lang"));
        assert!(Query::parse(Some("q=%E4%BD")).is_err());
        assert!(Query::parse(Some("q=%G1")).is_err());
    }
}
