//! The provider the simulator plays: from one request (method, path, headers, body) to what to do
//! with it. No I/O here: the server carries the plan out.
//!
//! POST creates an operation, GET and HEAD query one by the last path segment, any other method
//! answers like POST without creating anything. Faults decide what the operation becomes: a 503
//! refuses the request before it runs (nothing recorded); a 500, a reset or a timeout come after it
//! ran (recorded, as a real provider may have executed it before failing to answer); `slow:MS` runs it
//! and answers late. A query that meets a fault leaves its operation as it was.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use hyper::{HeaderMap, Method};
use payerr::responses::{Answer, Answers, CodeQuery};
use payerr::Dialect;

use crate::directive::{Directive, Fault};
use crate::ledger::{operation_id, queried_id, Ledger, Operation};
use crate::rejection::Rejection;

/// `Content-Type` of the provider's answers and of the simulator's own.
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// The header a creating request names its operation with (lower case, as hyper stores names).
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Prefix of the simulator's own endpoints, which are never counted.
const CONTROL: &str = "/__simulator";

/// One HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    /// `Retry-After`, in seconds.
    pub retry_after_s: Option<u64>,
    /// `Allow`, for a 405.
    pub allow: Option<&'static str>,
    /// `Connection: close`: the connection cannot be read on after this answer.
    pub close: bool,
}

impl Reply {
    fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: JSON,
            body: Bytes::from(body),
            retry_after_s: None,
            allow: None,
            close: false,
        }
    }

    fn answer(answer: Answer) -> Reply {
        Reply::json(answer.http_status, answer.body)
    }

    /// What a proxy or load balancer in front of a provider answers when the provider has no body
    /// of its own for the case.
    fn plain(status: u16, text: &'static str) -> Reply {
        Reply {
            content_type: TEXT,
            body: Bytes::from_static(text.as_bytes()),
            ..Reply::json(status, String::new())
        }
    }

    /// The simulator's own error.
    pub fn rejection(r: &Rejection) -> Reply {
        Reply {
            allow: r.allow,
            close: r.close,
            ..Reply::json(r.status, r.to_json())
        }
    }
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Answer, after `delay` when there is one.
    Answer {
        reply: Reply,
        delay: Option<Duration>,
    },
    /// Never answer; hold the connection until the client or the server gives up.
    Hold,
    /// Close the connection with a TCP RST, without answering.
    Reset,
}

impl Plan {
    fn now(reply: Reply) -> Plan {
        Plan::Answer { reply, delay: None }
    }
}

/// The request as the provider sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request<'a> {
    pub method: &'a Method,
    /// The path, without the query.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A request's plan, with what the log line says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    pub plan: Plan,
    pub fault: Option<Fault>,
    pub operation: Option<String>,
}

/// The provider: a dialect's answers and what it remembers.
#[derive(Debug)]
pub(crate) struct Provider {
    dialect: Dialect,
    ledger: Mutex<Ledger>,
}

impl Provider {
    /// A provider speaking `dialect`, which must have a `[responses]` table.
    pub fn new(dialect: Dialect) -> Result<Provider, String> {
        if dialect.answers().is_none() {
            return Err(no_responses(&dialect));
        }
        Ok(Provider {
            dialect,
            ledger: Mutex::new(Ledger::default()),
        })
    }

    /// The dialect spoken.
    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // The ledger is consistent between statements: keep using it after a panic elsewhere.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides what to do with `request`.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        let refuse = |r: Rejection| Decision {
            plan: Plan::now(Reply::rejection(&r)),
            fault: None,
            operation: None,
        };
        if request.path == CONTROL || request.path.starts_with("/__simulator/") {
            return match self.control(request) {
                Ok(reply) => Decision {
                    plan: Plan::now(reply),
                    fault: None,
                    operation: None,
                },
                Err(r) => refuse(r),
            };
        }
        let path = payerr::pan::mask_pans(request.path);
        self.ledger().count(request.method.as_str(), &path);
        let directive = match Directive::from_headers(request.headers) {
            Ok(d) => d,
            Err(r) => return refuse(r),
        };
        let Some(answers) = self.dialect.answers() else {
            // Provider::new checked it and the dialect is never changed, but say so if it were.
            return refuse(Rejection::server(no_responses(&self.dialect)));
        };
        let play = Play {
            provider: self,
            answers,
            directive: &directive,
            request,
            path: &path,
        };
        let (plan, operation) = match play.run() {
            Ok(done) => done,
            Err(r) => return refuse(r),
        };
        Decision {
            plan,
            fault: directive.fault,
            operation: Some(operation),
        }
    }

    /// `GET /__simulator/stats`, `POST /__simulator/reset`.
    fn control(&self, request: &Request<'_>) -> Result<Reply, Rejection> {
        let path = request.path.trim_end_matches('/');
        let (allowed, allow) = match path {
            "/__simulator/stats" => (request.method == Method::GET, "GET"),
            "/__simulator/reset" => (request.method == Method::POST, "POST"),
            _ => return Err(Rejection::no_endpoint(request.path)),
        };
        if !allowed {
            return Err(Rejection::method(path, allow));
        }
        let mut ledger = self.ledger();
        if path == "/__simulator/reset" {
            ledger.reset();
        }
        Ok(Reply::json(200, ledger.stats(&self.dialect.id).to_string()))
    }
}

fn no_responses(dialect: &Dialect) -> String {
    format!(
        "dialect `{}` has no [responses] table, so payerr simulate cannot speak it (docs/catalog-format.md)",
        dialect.id
    )
}

/// One request being played.
struct Play<'a> {
    provider: &'a Provider,
    answers: Answers<'a>,
    directive: &'a Directive,
    request: &'a Request<'a>,
    /// The path with card numbers masked, as recorded.
    path: &'a str,
}

impl Play<'_> {
    /// The plan and the operation id it concerns.
    fn run(&self) -> Result<(Plan, String), Rejection> {
        let method = self.request.method;
        let query = method == Method::GET || method == Method::HEAD;
        let id = if query {
            queried_id(self.request.path).to_owned()
        } else {
            let key = self
                .request
                .headers
                .get(IDEMPOTENCY_KEY)
                .and_then(|v| v.to_str().ok());
            match operation_id(key, self.request.body) {
                Some(id) => id,
                None if method == Method::POST => self.provider.ledger().fresh_id(),
                None => queried_id(self.request.path).to_owned(),
            }
        };
        let fault = self.directive.fault;
        // Refused before anything runs; a query that fails or never returns changes nothing.
        match fault {
            Some(Fault::Http503) => return Ok((self.unavailable(&id), id)),
            Some(f @ (Fault::Http500 | Fault::Timeout | Fault::Reset)) if query => {
                return Ok((self.broken(f, &id), id))
            }
            _ => {}
        }
        let answer = if query {
            self.query(&id)?
        } else if method == Method::POST {
            self.create(&id, fault)?
        } else {
            self.requested(&id)?
        };
        let plan = match fault {
            Some(Fault::Slow(delay)) => Plan::Answer {
                reply: Reply::answer(answer),
                delay: Some(delay),
            },
            Some(f) => self.broken(f, &id),
            None => Plan::now(Reply::answer(answer)),
        };
        Ok((plan, id))
    }

    fn code(&self, code: &str, id: &str) -> Result<Answer, Rejection> {
        let query = CodeQuery {
            code,
            scope: self.directive.scope.as_deref(),
            reason: self.directive.reason.as_deref(),
        };
        self.answers
            .code(&query, id)
            .map_err(|e| Rejection::code(self.directive.code_header(), e.to_string()))
    }

    /// The answer `X-Simulate-Code` asks for, else success.
    fn requested(&self, id: &str) -> Result<Answer, Rejection> {
        match &self.directive.code {
            Some(code) => self.code(code, id),
            None => Ok(self.answers.success(id)),
        }
    }

    /// `GET …/{id}`: an explicit code wins; else the operation's answer, or not found.
    fn query(&self, id: &str) -> Result<Answer, Rejection> {
        if self.directive.code.is_some() {
            return self.requested(id);
        }
        let answer = self.provider.ledger().get_mut(id).map(Operation::query);
        Ok(answer.unwrap_or_else(|| self.answers.not_found(id)))
    }

    /// `POST`: records the operation and answers it; a known id replays the recorded operation, as a
    /// provider honouring idempotency keys does.
    fn create(&self, id: &str, fault: Option<Fault>) -> Result<Answer, Rejection> {
        let (outcome, pending) = match &self.directive.then {
            Some(then) => {
                let pending = self.answers.pending(id).ok_or_else(|| {
                    Rejection::code(
                        self.directive.code_header(),
                        format!(
                            "dialect `{}` has no pending answer ([responses.pending])",
                            self.provider.dialect.id
                        ),
                    )
                })?;
                (
                    self.code(then, id)?,
                    Some((pending, self.directive.then_after)),
                )
            }
            None => (self.requested(id)?, None),
        };
        let mut ledger = self.provider.ledger();
        if let Some(existing) = ledger.get_mut(id) {
            return Ok(existing.current());
        }
        let operation = Operation {
            id: id.into(),
            method: self.request.method.to_string(),
            path: self.path.to_owned(),
            outcome,
            pending,
            queries: 0,
            fault: fault.map(Fault::name),
        };
        let answer = operation.current();
        ledger.insert(operation);
        Ok(answer)
    }

    /// `http-503`: the dialect's service-unavailable code, else a bare 503, with `Retry-After`.
    fn unavailable(&self, id: &str) -> Plan {
        let reply = match self.answers.service_unavailable(id) {
            Some(answer) => Reply::json(503, answer.body),
            None => Reply::plain(503, "Service Unavailable\n"),
        };
        Plan::now(Reply {
            retry_after_s: Some(self.directive.retry_after_s.unwrap_or(1)),
            ..reply
        })
    }

    /// `http-500`, `timeout`, `reset`.
    fn broken(&self, fault: Fault, id: &str) -> Plan {
        match fault {
            Fault::Timeout => Plan::Hold,
            Fault::Reset => Plan::Reset,
            _ => Plan::now(match self.answers.internal_error(id) {
                Some(answer) => Reply::json(500, answer.body),
                None => Reply::plain(500, "Internal Server Error\n"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderName, HeaderValue};
    use serde_json::Value;

    fn provider(dialect: &str) -> Provider {
        let engine = payerr::Engine::builtin().unwrap();
        Provider::new(engine.dialect(dialect).unwrap().clone()).unwrap()
    }

    fn send(
        p: &Provider,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Decision {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        p.decide(&Request {
            method: &method,
            path,
            headers: &map,
            body: body.as_bytes(),
        })
    }

    /// The reply of an immediate answer, with its body as JSON.
    fn reply(d: &Decision) -> (u16, Value) {
        match &d.plan {
            Plan::Answer { reply, delay: None } => (
                reply.status,
                serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
            ),
            other => panic!("not an immediate answer: {other:?}"),
        }
    }

    fn stats(p: &Provider) -> Value {
        reply(&send(p, "GET", "/__simulator/stats", &[], "")).1
    }

    #[test]
    fn a_dialect_without_responses_cannot_be_played() {
        let engine = payerr::Engine::builtin().unwrap();
        let mut dialect = engine.dialect("pts").unwrap().clone();
        dialect.responses = None;
        let e = Provider::new(dialect).unwrap_err();
        assert!(e.contains("`pts` has no [responses]"), "{e}");
    }

    #[test]
    fn post_creates_and_get_queries_with_the_id_from_the_key_the_body_or_a_counter() {
        let p = provider("card-issuing");
        let (status, body) = reply(&send(&p, "POST", "/v1/cards", &[], "{}"));
        assert_eq!(
            (status, &body["code"], &body["data"]["id"]),
            (200, &0.into(), &"op_1".into())
        );
        let d = send(&p, "POST", "/v1/cards", &[], r#"{"order_id":"ord-9"}"#);
        assert_eq!(d.operation.as_deref(), Some("ord-9"));
        let d = send(
            &p,
            "POST",
            "/v1/cards",
            &[("Idempotency-Key", "k1")],
            r#"{"id":"x"}"#,
        );
        assert_eq!(d.operation.as_deref(), Some("k1"));
        let (status, body) = reply(&send(&p, "GET", "/v1/cards/ord-9", &[], ""));
        assert_eq!((status, &body["data"]["id"]), (200, &"ord-9".into()));
        // Not found: the dialect's code 4009 in an HTTP 200.
        let (status, body) = reply(&send(&p, "GET", "/v1/cards/nope", &[], ""));
        assert_eq!((status, &body["code"]), (200, &4009.into()));
        let s = stats(&p);
        assert_eq!(s["requests"]["POST /v1/cards"], 3);
        assert_eq!(s["requests"]["GET /v1/cards/ord-9"], 1);
        assert_eq!(s["total"], 5);
        assert_eq!(s["operations"].as_array().unwrap().len(), 3);
        assert_eq!(s["operations"][1]["queries"], 1);
    }

    #[test]
    fn put_answers_like_post_without_creating() {
        let p = provider("pts");
        let d = send(
            &p,
            "PUT",
            "/v1/orders/o1",
            &[("X-Simulate-Code", "1007")],
            "",
        );
        assert_eq!(reply(&d).1["code"], 1007);
        let (_, body) = reply(&send(&p, "DELETE", "/v1/orders/o1", &[], ""));
        assert_eq!(body["data"]["order_id"], "o1");
        assert_eq!(stats(&p)["operations"], Value::Array(vec![]));
    }

    #[test]
    fn a_replayed_key_answers_the_recorded_operation() {
        let p = provider("pts");
        let key = [("Idempotency-Key", "same"), ("X-Simulate-Code", "1007")];
        assert_eq!(reply(&send(&p, "POST", "/pay", &key, "")).1["code"], 1007);
        let (_, replay) = reply(&send(
            &p,
            "POST",
            "/pay",
            &[("Idempotency-Key", "same")],
            "",
        ));
        assert_eq!(replay["code"], 1007);
        assert_eq!(stats(&p)["operations"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn then_answers_pending_then_the_code_after_n_queries() {
        let p = provider("result-status");
        let headers = [
            ("Idempotency-Key", "t1"),
            ("X-Simulate-Then", "INSUFFICIENT_BALANCE"),
            ("X-Simulate-Then-After", "1"),
        ];
        let (_, first) = reply(&send(&p, "POST", "/pay", &headers, ""));
        assert_eq!(first["result"]["resultCode"], "PAYMENT_IN_PROCESS");
        assert_eq!(stats(&p)["operations"][0]["state"], "pending");
        let query =
            || reply(&send(&p, "GET", "/pay/t1", &[], "")).1["result"]["resultCode"].clone();
        assert_eq!(query(), "PAYMENT_IN_PROCESS");
        assert_eq!(query(), "INSUFFICIENT_BALANCE");
        assert_eq!(query(), "INSUFFICIENT_BALANCE");
        let op = &stats(&p)["operations"][0];
        assert_eq!(
            (&op["state"], &op["queries"], &op["code"]),
            (&"failed".into(), &3.into(), &"INSUFFICIENT_BALANCE".into())
        );
    }

    #[test]
    fn codes_are_checked_against_the_dialect() {
        let p = provider("typed-error");
        let (status, body) = reply(&send(&p, "POST", "/p", &[("X-Simulate-Code", "nope")], ""));
        assert_eq!(
            (status, &body["code"], &body["param"]),
            (
                400,
                &"unknown_simulate_code".into(),
                &"X-Simulate-Code".into()
            )
        );
        assert!(
            body["message"].as_str().unwrap().contains("`typed-error`"),
            "{body}"
        );
        let (status, body) = reply(&send(&p, "POST", "/p", &[("X-Simulate-Then", "nope")], ""));
        assert_eq!((status, &body["param"]), (400, &"X-Simulate-Then".into()));
        let (status, body) = reply(&send(
            &p,
            "POST",
            "/p",
            &[
                ("X-Simulate-Code", "invalid_parameter"),
                ("X-Simulate-Type", "payout_error"),
            ],
            "",
        ));
        assert_eq!((status, &body["type"]), (400, &"payout_error".into()));
        // Refused requests create nothing.
        assert_eq!(stats(&p)["operations"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn faults_record_the_operation_only_when_it_may_have_run() {
        let p = provider("pts");
        let post = |key: &str, fault: &str| {
            send(
                &p,
                "POST",
                "/pay",
                &[("Idempotency-Key", key), ("X-Simulate-Fault", fault)],
                "",
            )
        };
        let d = post("u", "http-503");
        match &d.plan {
            Plan::Answer { reply, .. } => {
                assert_eq!((reply.status, reply.retry_after_s), (503, Some(1)));
                assert!(String::from_utf8_lossy(&reply.body).contains("8001"));
            }
            other => panic!("{other:?}"),
        }
        let (status, body) = reply(&post("i", "http-500"));
        assert_eq!((status, &body["code"]), (500, &9999.into()));
        assert_eq!(post("t", "timeout").plan, Plan::Hold);
        assert_eq!(post("r", "reset").plan, Plan::Reset);
        match post("s", "slow:20").plan {
            Plan::Answer { delay, reply } => {
                assert_eq!(
                    (delay, reply.status),
                    (Some(Duration::from_millis(20)), 200)
                )
            }
            other => panic!("{other:?}"),
        }
        let s = stats(&p);
        let ids: Vec<&str> = s["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["i", "t", "r", "s"]);
        assert_eq!(s["operations"][1]["fault"], "timeout");
        // The operation that timed out ran: a later query finds it.
        assert_eq!(reply(&send(&p, "GET", "/pay/t", &[], "")).0, 200);
        // A query that meets a fault is not counted.
        assert_eq!(
            send(&p, "GET", "/pay/t", &[("X-Simulate-Fault", "reset")], "").plan,
            Plan::Reset
        );
        assert_eq!(stats(&p)["operations"][1]["queries"], 1);
    }

    #[test]
    fn a_503_without_a_documented_code_is_bare_and_carries_the_asked_retry_after() {
        let p = provider("typed-error");
        let d = send(
            &p,
            "POST",
            "/p",
            &[
                ("X-Simulate-Fault", "http-503"),
                ("X-Simulate-Retry-After", "9"),
            ],
            "",
        );
        match d.plan {
            Plan::Answer { reply, .. } => {
                assert_eq!(
                    (reply.status, reply.retry_after_s, reply.content_type),
                    (503, Some(9), TEXT)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn control_endpoints_are_not_counted_and_reset_clears_everything() {
        let p = provider("portone");
        send(&p, "POST", "/pay", &[], "");
        assert_eq!(stats(&p)["total"], 1);
        let (status, after) = reply(&send(&p, "POST", "/__simulator/reset", &[], ""));
        assert_eq!((status, &after["total"]), (200, &0.into()));
        assert_eq!(stats(&p)["operations"], Value::Array(vec![]));
        let (status, body) = reply(&send(&p, "POST", "/__simulator/stats", &[], ""));
        assert_eq!((status, &body["code"]), (405, &"method_not_allowed".into()));
        let (status, _) = reply(&send(&p, "GET", "/__simulator/nope", &[], ""));
        assert_eq!(status, 404);
        assert_eq!(stats(&p)["total"], 0);
    }

    #[test]
    fn card_numbers_in_paths_are_masked_in_stats() {
        let p = provider("pts");
        send(&p, "GET", "/cards/4111111111111111", &[], "");
        let s = stats(&p).to_string();
        assert!(!s.contains("4111111111111111"), "{s}");
    }
}
