//! What the simulator remembers: the operations it executed (with the answer each gives when queried)
//! and the count of requests per method and path, both bounded so that a long load test cannot grow
//! them without end.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use payerr::responses::Answer;
use serde::Deserialize;
use serde_json::{json, Value};

/// Operations kept; past this the oldest are forgotten (a query of one then answers not found).
const MAX_OPERATIONS: usize = 100_000;

/// Distinct `METHOD path` keys counted; past this, new ones are counted under [`OTHER_PATHS`].
const MAX_PATHS: usize = 10_000;

/// The key counting requests to paths past [`MAX_PATHS`].
const OTHER_PATHS: &str = "* (other paths)";

/// Longest operation id taken from a request; a longer one is not an id but data.
const MAX_ID: usize = 255;

/// An operation the simulator executed.
#[derive(Clone, Debug)]
pub(crate) struct Operation {
    pub id: Arc<str>,
    pub method: String,
    pub path: String,
    /// The answer once the operation is final.
    pub outcome: Answer,
    /// With `X-Simulate-Then`: the pending answer and how many queries get it.
    pub pending: Option<(Answer, u32)>,
    /// Queries answered so far.
    pub queries: u64,
    /// The fault its creating request was answered with.
    pub fault: Option<&'static str>,
}

impl Operation {
    /// Whether queries still get the pending answer.
    fn is_pending(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|(_, after)| self.queries <= u64::from(*after))
    }

    /// What the operation answers now, without counting a query (a replayed creation).
    pub fn current(&self) -> Answer {
        match &self.pending {
            Some((pending, _)) if self.is_pending() => pending.clone(),
            _ => self.outcome.clone(),
        }
    }

    /// Answers one query: the pending answer to the first `Then-After` queries, then the outcome.
    pub fn query(&mut self) -> Answer {
        self.queries += 1;
        self.current()
    }

    /// `pending` until the final answer is given, then what the final answer says happened.
    fn state(&self) -> &'static str {
        if self.is_pending() {
            "pending"
        } else {
            self.outcome.outcome.as_str()
        }
    }

    fn to_json(&self) -> Value {
        json!({
            // The id is kept as sent, to be found again; shown, it is masked like any text.
            "id": payerr::pan::mask_pans(&self.id),
            "method": self.method,
            "path": self.path,
            "state": self.state(),
            "code": self.outcome.code.as_deref(),
            "http_status": self.outcome.http_status,
            "queries": self.queries,
            "fault": self.fault,
        })
    }
}

/// Operations by id, in creation order, and request counts.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    operations: HashMap<Arc<str>, Operation>,
    order: VecDeque<Arc<str>>,
    forgotten: u64,
    requests: BTreeMap<String, u64>,
    total: u64,
    next_id: u64,
}

impl Ledger {
    /// Counts one request. `path` must already have its card numbers masked.
    pub fn count(&mut self, method: &str, path: &str) {
        self.total += 1;
        let key = format!("{method} {path}");
        if let Some(n) = self.requests.get_mut(&key) {
            *n += 1;
        } else if self.requests.len() < MAX_PATHS {
            self.requests.insert(key, 1);
        } else {
            *self.requests.entry(OTHER_PATHS.to_owned()).or_default() += 1;
        }
    }

    /// A fresh id for an operation that brought none.
    pub fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("op_{}", self.next_id)
    }

    /// The operation with this id.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Operation> {
        self.operations.get_mut(id)
    }

    /// Records a new operation (the caller checked the id is free), forgetting the oldest past the
    /// limit.
    pub fn insert(&mut self, operation: Operation) {
        if self.order.len() >= MAX_OPERATIONS {
            if let Some(oldest) = self.order.pop_front() {
                self.operations.remove(&oldest);
                self.forgotten += 1;
            }
        }
        self.order.push_back(operation.id.clone());
        self.operations.insert(operation.id.clone(), operation);
    }

    /// Forgets everything (`POST /__simulator/reset`); generated ids start again at `op_1`.
    pub fn reset(&mut self) {
        *self = Ledger::default();
    }

    /// `GET /__simulator/stats`.
    pub fn stats(&self, dialect: &str) -> Value {
        let operations: Vec<Value> = self
            .order
            .iter()
            .filter_map(|id| self.operations.get(id))
            .map(Operation::to_json)
            .collect();
        json!({
            "dialect": dialect,
            "requests": self.requests,
            "total": self.total,
            "operations": operations,
            "operations_forgotten": self.forgotten,
        })
    }
}

/// The fields a request body may carry its operation id in, in order of preference.
#[derive(Deserialize)]
struct BodyIds {
    id: Option<Value>,
    order_id: Option<Value>,
    payment_id: Option<Value>,
    merchant_order_id: Option<Value>,
}

/// The id a creating request names: its `Idempotency-Key`, else a top-level string `id`, `order_id`,
/// `payment_id` or `merchant_order_id` of a JSON body. Blank or overlong values are no id.
pub(crate) fn operation_id(idempotency_key: Option<&str>, body: &[u8]) -> Option<String> {
    let usable = |v: &str| {
        let v = v.trim();
        (!v.is_empty() && v.chars().count() <= MAX_ID).then(|| v.to_owned())
    };
    if let Some(key) = idempotency_key.and_then(usable) {
        return Some(key);
    }
    let ids: BodyIds = serde_json::from_slice(body).ok()?;
    [ids.id, ids.order_id, ids.payment_id, ids.merchant_order_id]
        .iter()
        .flatten()
        .find_map(|v| v.as_str().and_then(usable))
}

/// The id a query names: the last segment of its path.
pub(crate) fn queried_id(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use payerr::Outcome;

    fn answer(outcome: Outcome, code: Option<&str>) -> Answer {
        Answer {
            http_status: 200,
            body: format!("{outcome:?}"),
            code: code.map(Arc::from),
            outcome,
        }
    }

    fn operation(id: &str, pending: Option<u32>) -> Operation {
        Operation {
            id: id.into(),
            method: "POST".to_owned(),
            path: "/v1/payments".to_owned(),
            outcome: answer(Outcome::Failed, Some("6001")),
            pending: pending.map(|n| (answer(Outcome::Pending, None), n)),
            queries: 0,
            fault: None,
        }
    }

    #[test]
    fn ids_come_from_the_key_then_the_body_fields_in_order() {
        assert_eq!(
            operation_id(Some(" k-1 "), br#"{"id":"b"}"#).as_deref(),
            Some("k-1")
        );
        assert_eq!(
            operation_id(Some("  "), br#"{"id":"b"}"#).as_deref(),
            Some("b")
        );
        let body = br#"{"amount":1,"merchant_order_id":"m","payment_id":"p","order_id":7}"#;
        assert_eq!(operation_id(None, body).as_deref(), Some("p"));
        assert_eq!(
            operation_id(None, br#"{"merchant_order_id":"m"}"#).as_deref(),
            Some("m")
        );
        for none in [
            &br#"{"data":{"id":"nested"}}"#[..],
            br#"["id"]"#,
            b"id=1",
            b"",
            br#"{"id":""}"#,
        ] {
            assert_eq!(
                operation_id(None, none),
                None,
                "{}",
                String::from_utf8_lossy(none)
            );
        }
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_ID + 1));
        assert_eq!(operation_id(None, long.as_bytes()), None);
    }

    #[test]
    fn the_queried_id_is_the_last_path_segment() {
        assert_eq!(queried_id("/v1/payments/op_1"), "op_1");
        assert_eq!(queried_id("/op_1"), "op_1");
        assert_eq!(queried_id("/v1/payments/"), "");
    }

    #[test]
    fn then_answers_pending_to_the_first_queries_then_the_outcome() {
        let mut op = operation("a", Some(2));
        assert_eq!(op.current().outcome, Outcome::Pending);
        assert_eq!(op.state(), "pending");
        assert_eq!(op.query().outcome, Outcome::Pending);
        assert_eq!(op.query().outcome, Outcome::Pending);
        assert_eq!(op.query().outcome, Outcome::Failed);
        assert_eq!((op.state(), op.queries), ("failed", 3));
        let mut now = operation("b", Some(0));
        assert_eq!(
            now.current().outcome,
            Outcome::Pending,
            "the creation answer"
        );
        assert_eq!(now.query().outcome, Outcome::Failed);
        let mut plain = operation("c", None);
        assert_eq!(
            (plain.state(), plain.query().outcome),
            ("failed", Outcome::Failed)
        );
    }

    #[test]
    fn stats_list_operations_in_order_and_count_requests() {
        let mut ledger = Ledger::default();
        ledger.count("POST", "/v1/payments");
        ledger.count("POST", "/v1/payments");
        ledger.count("GET", "/v1/payments/a");
        ledger.insert(operation("b", None));
        ledger.insert(operation("a", Some(0)));
        let stats = ledger.stats("pts");
        assert_eq!(stats["dialect"], "pts");
        assert_eq!(stats["total"], 3);
        assert_eq!(stats["requests"]["POST /v1/payments"], 2);
        assert_eq!(stats["operations"][0]["id"], "b");
        assert_eq!(stats["operations"][0]["state"], "failed");
        assert_eq!(stats["operations"][0]["code"], "6001");
        assert_eq!(stats["operations"][1]["state"], "pending");
        assert_eq!(ledger.fresh_id(), "op_1");
        ledger.reset();
        assert_eq!(ledger.stats("pts")["total"], 0);
        assert_eq!(ledger.fresh_id(), "op_1");
    }

    #[test]
    fn memory_is_bounded() {
        let mut ledger = Ledger::default();
        for i in 0..MAX_PATHS + 5 {
            ledger.count("GET", &format!("/p/{i}"));
        }
        ledger.count("GET", "/p/0");
        assert_eq!(ledger.requests.len(), MAX_PATHS + 1);
        assert_eq!(ledger.requests[OTHER_PATHS], 5);
        assert_eq!(ledger.requests["GET /p/0"], 2);
        for i in 0..MAX_OPERATIONS + 3 {
            ledger.insert(operation(&i.to_string(), None));
        }
        assert_eq!(ledger.operations.len(), MAX_OPERATIONS);
        assert_eq!(ledger.forgotten, 3);
        assert!(ledger.get_mut("2").is_none() && ledger.get_mut("3").is_some());
    }
}
