//! Talking to a provider: one HTTP/1.1 client per provider (pooled keep-alive connections), headers
//! filtered as a proxy must, and every failure classified by whether the request can have reached
//! the provider, which is what decides between a safe retry and an unknown outcome.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use payerr::NoResponse;
use payerr_server::listener::{cores, current_worker};

/// Largest provider response read; a larger one is a failed attempt (it was sent: unknown).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// What came back from one attempt.
#[derive(Debug)]
pub enum Reply {
    /// The provider answered.
    Response {
        /// Its status.
        status: u16,
        /// Its headers.
        headers: HeaderMap,
        /// Its body.
        body: Bytes,
    },
    /// No answer: whether it was sent, and what went wrong.
    Failed {
        /// Whether the provider can have processed it.
        sent: NoResponse,
        /// What happened, for the log and the event.
        error: String,
    },
}

/// Pooled clients for one provider: one per worker thread, plus one for callers off the workers.
///
/// A pooled connection is driven by the runtime that opened it; sharing one pool between the
/// workers' runtimes would hand each exchange across threads.
#[derive(Clone, Debug)]
pub struct Upstream {
    clients: Box<[Client<HttpConnector, Full<Bytes>>]>,
}

impl Upstream {
    /// Clients whose connection set-up is bounded by `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        // The gateway deals its connections to one worker per core.
        let clients = (0..=cores())
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(60))
                    .build(connector.clone())
            })
            .collect();
        Upstream { clients }
    }

    /// The calling worker's client.
    fn client(&self) -> &Client<HttpConnector, Full<Bytes>> {
        current_worker()
            .and_then(|worker| self.clients.get(worker + 1))
            .unwrap_or(&self.clients[0])
    }

    /// Sends one request and reads the whole answer within `timeout`.
    pub async fn send(
        &self,
        method: &Method,
        uri: Uri,
        headers: &HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Reply {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers.clone();
        let exchange = async {
            let response = self.client().request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(Failure::Body)?
                .to_bytes();
            Ok::<_, Failure>(Reply::Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => reply,
            // Only a connection that never opened proves the request was not sent; hyper's client
            // already re-sends by itself a request that a dead pooled connection never took.
            Ok(Err(Failure::Client(e))) if e.is_connect() => Reply::Failed {
                sent: NoResponse::NotSent,
                error: format!("cannot connect: {}", source_text(&e)),
            },
            Ok(Err(e)) => Reply::Failed {
                sent: NoResponse::MaybeSent,
                error: e.to_string(),
            },
            Err(_) => Reply::Failed {
                sent: NoResponse::MaybeSent,
                error: format!("no answer within {} ms", timeout.as_millis()),
            },
        }
    }
}

/// Why an exchange failed before a whole response was read.
enum Failure {
    Client(hyper_util::client::legacy::Error),
    Body(Box<dyn std::error::Error + Send + Sync>),
}

impl From<hyper_util::client::legacy::Error> for Failure {
    fn from(e: hyper_util::client::legacy::Error) -> Failure {
        Failure::Client(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Client(e) => write!(f, "request failed: {}", source_text(e)),
            Failure::Body(e) => write!(f, "response body failed: {e}"),
        }
    }
}

/// The innermost cause: hyper's outer errors say little ("client error (Connect)").
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), plus those the
/// client or hyper sets for the next hop.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Removes the headers not to pass on: hop-by-hop ones and those the `Connection` header names.
pub fn keep_end_to_end(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(HeaderName::as_str))
    {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-trace"),
            ("x-trace", "1"),
            ("host", "gateway"),
            ("transfer-encoding", "chunked"),
            ("authorization", "Bearer t"),
            ("idempotency-key", "k1"),
        ] {
            headers.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        keep_end_to_end(&mut headers);
        // Removing swaps entries: the order of different names is not kept, nor meaningful.
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["authorization", "idempotency-key"]);
    }

    #[tokio::test]
    async fn a_refused_connection_is_not_sent_and_a_silent_server_may_have_it() {
        let upstream = Upstream::new(Duration::from_secs(2));
        // A port nobody listens on: bind one, note it, close it.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let uri: Uri = format!("http://127.0.0.1:{port}/pay").parse().unwrap();
        let reply = upstream
            .send(
                &Method::POST,
                uri,
                &HeaderMap::new(),
                Bytes::new(),
                Duration::from_secs(2),
            )
            .await;
        assert!(
            matches!(
                reply,
                Reply::Failed {
                    sent: NoResponse::NotSent,
                    ..
                }
            ),
            "{reply:?}"
        );

        // A server that accepts and reads but never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let (socket, _) = silent.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let uri: Uri = format!("http://{addr}/pay").parse().unwrap();
        let reply = upstream
            .send(
                &Method::POST,
                uri,
                &HeaderMap::new(),
                Bytes::from_static(b"{}"),
                Duration::from_millis(200),
            )
            .await;
        assert!(
            matches!(
                reply,
                Reply::Failed {
                    sent: NoResponse::MaybeSent,
                    ..
                }
            ),
            "{reply:?}"
        );
        held.abort();
    }
}
