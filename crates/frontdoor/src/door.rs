//! The front door's checks, in the documented order (docs/client-guide.md): the key, its state and
//! address, the timestamp, the nonce, the signature, the rate; then, for a POST, the idempotency key.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use http::{HeaderMap, Method};

use crate::client::{Client, Clients};
use crate::idempotency::{self, Claim, StoredResponse, IDEMPOTENCY_KEY};
use crate::rejection::Rejection;
use crate::signature;
use crate::store::{Begun, Rate, Store, StoreError};

/// Header carrying the client's API key.
pub const API_KEY: &str = "api-key";
/// Header carrying the request's unix time in seconds.
pub const TIMESTAMP: &str = "timestamp";
/// Header carrying the request's nonce.
pub const NONCE: &str = "nonce";
/// Header carrying the request's signature.
pub const SIGNATURE: &str = "signature";
/// The headers meant for the front door alone: they are not forwarded to providers.
pub const CREDENTIAL_HEADERS: [&str; 4] = [API_KEY, TIMESTAMP, NONCE, SIGNATURE];
/// Longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 64;

/// Tunables of the checks.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Largest distance between a request's timestamp and the gateway's clock.
    pub timestamp_tolerance: Duration,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
    /// Whether a POST without `Idempotency-Key` is refused.
    pub idempotency_required: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timestamp_tolerance: Duration::from_secs(300),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            idempotency_required: false,
        }
    }
}

/// A request as the front door sees it.
pub struct Presented<'a> {
    /// Method.
    pub method: &'a Method,
    /// Path and query exactly as the client sent them (what it signed).
    pub path_and_query: &'a str,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// Body.
    pub body: &'a [u8],
    /// The address the connection comes from.
    pub peer: IpAddr,
    /// The body's hash, computed once for the signature and the idempotency claim.
    body_sha256: OnceLock<String>,
}

impl<'a> Presented<'a> {
    /// A request's parts.
    pub fn new(
        method: &'a Method,
        path_and_query: &'a str,
        headers: &'a HeaderMap,
        body: &'a [u8],
        peer: IpAddr,
    ) -> Presented<'a> {
        Presented {
            method,
            path_and_query,
            headers,
            body,
            peer,
            body_sha256: OnceLock::new(),
        }
    }

    fn body_sha256(&self) -> &str {
        self.body_sha256
            .get_or_init(|| signature::body_sha256_hex(self.body))
    }
}

/// What to do with an authenticated request.
#[derive(Debug)]
pub enum Admission {
    /// Send it upstream; when it began an idempotency key, complete the ticket with the answer.
    Forward(Option<Ticket>),
    /// Answer the stored response of the key's first request, which has been sent upstream already.
    Replay(StoredResponse),
}

/// An idempotency key begun by a request, to be completed with its answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    key: String,
    client: String,
}

/// The checks with their clients, store and settings.
pub struct FrontDoor {
    clients: Clients,
    store: Store,
    settings: Settings,
}

impl FrontDoor {
    /// A front door for `clients` (none: open) over `store`.
    pub fn new(clients: Clients, store: Store, settings: Settings) -> FrontDoor {
        FrontDoor {
            clients,
            store,
            settings,
        }
    }

    /// Whether requests come in without credentials (no clients configured).
    pub fn is_open(&self) -> bool {
        self.clients.is_empty()
    }

    /// Stores the answer of the request that began `ticket`'s key, for its replays.
    pub async fn complete(
        &self,
        ticket: &Ticket,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        self.store
            .complete(&ticket.key, &ticket.client, response)
            .await
    }

    /// The client, checked: key, state, address, timestamp, nonce, signature, rate, in that
    /// order. `None` when the gateway is open. `now` is the gateway's clock in unix seconds.
    pub async fn authenticate(
        &self,
        req: &Presented<'_>,
        now: i64,
    ) -> Result<Option<Arc<Client>>, Rejection> {
        if self.clients.is_empty() {
            return Ok(None);
        }
        let header = |name: &str| req.headers.get(name).map(|v| v.as_bytes());
        let key = header(API_KEY).filter(|k| !k.is_empty()).ok_or_else(|| {
            Rejection::authentication(
                "api_key_required",
                "no API key: send your key in the Api-Key header",
            )
        })?;
        let client = self.clients.get(key).ok_or_else(|| {
            Rejection::authentication(
                "api_key_not_found",
                "the API key in Api-Key is not known to this gateway",
            )
        })?;
        if !client.enabled {
            return Err(Rejection::authentication(
                "api_key_disabled",
                "this API key is disabled",
            ));
        }
        if client.expires_at.is_some_and(|t| now >= t) {
            return Err(Rejection::authentication(
                "api_key_expired",
                "this API key has expired",
            ));
        }
        if !client.allows(req.peer) {
            return Err(Rejection::permission(
                "ip_not_allowed",
                &format!(
                    "requests with this API key are not allowed from {}",
                    req.peer.to_canonical()
                ),
            ));
        }
        let timestamp = header(TIMESTAMP).unwrap_or_default();
        let tolerance = self.settings.timestamp_tolerance.as_secs();
        let sent = std::str::from_utf8(timestamp)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<i64>().ok());
        if sent.is_none_or(|t| t.abs_diff(now) > tolerance) {
            return Err(Rejection::authentication(
                "timestamp_invalid",
                &format!(
                    "Timestamp must be the current unix time in seconds, within {tolerance} s of the gateway's clock ({now})"
                ),
            ));
        }
        let nonce = std::str::from_utf8(header(NONCE).unwrap_or_default())
            .ok()
            .filter(|n| {
                !n.is_empty() && n.len() <= MAX_NONCE_LEN && n.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                Rejection::authentication(
                    "nonce_invalid",
                    &format!(
                        "Nonce must be 1 to {MAX_NONCE_LEN} printable characters, new for every request"
                    ),
                )
            })?;
        let text = signature::signing_string(
            req.method.as_str(),
            req.path_and_query,
            // Checked to be ASCII digits above.
            std::str::from_utf8(timestamp).unwrap_or_default(),
            nonce,
            req.body_sha256(),
        );
        let signed = signature::verify(
            client.secret(),
            &text,
            header(SIGNATURE).unwrap_or_default(),
        );
        let replayed = Rejection::authentication(
            "request_replayed",
            "this Nonce was already used: every request needs a new one",
        );
        // A nonce is claimed only by a correctly signed request, so that nobody without the
        // secret can use up a client's nonces; a bad signature still hears of a replay first, as
        // the documented order says.
        let store_down = |_: StoreError| Rejection::store_unavailable();
        if !signed {
            if self
                .store
                .nonce_seen(&client.id, nonce)
                .await
                .map_err(store_down)?
            {
                return Err(replayed);
            }
            return Err(Rejection::authentication(
                "signature_invalid",
                "the Signature does not match the request: see the client guide for the signed text",
            ));
        }
        // Remembered for both sides of the window: a timestamp may be `tolerance` ahead.
        let nonce_ttl = self.settings.timestamp_tolerance * 2 + Duration::from_secs(1);
        if !self
            .store
            .claim_nonce(&client.id, nonce, nonce_ttl)
            .await
            .map_err(store_down)?
        {
            return Err(replayed);
        }
        if let Some(bucket) = client.bucket {
            if let Rate::Limited { retry_after } = self
                .store
                .take_token(&client.id, bucket)
                .await
                .map_err(store_down)?
            {
                return Err(Rejection::rate_limited(retry_after));
            }
        }
        Ok(Some(client.clone()))
    }

    /// For a request that carries `Idempotency-Key` and may change something (see
    /// [`takes_idempotency_key`]): the key checked and begun for `client` (`""` when the gateway
    /// is open), or its stored answer. Other requests go through as they are, except a POST
    /// without a key when keys are required.
    pub async fn begin(&self, client: &str, req: &Presented<'_>) -> Result<Admission, Rejection> {
        if !takes_idempotency_key(req.method, req.headers) {
            if req.method == Method::POST && self.settings.idempotency_required {
                return Err(Rejection::idempotence(
                    "invalid_key_format",
                    "an Idempotency-Key header (a UUID v4) is required on POST",
                ));
            }
            return Ok(Admission::Forward(None));
        }
        let key = req
            .headers
            .get(IDEMPOTENCY_KEY)
            .map_or(&[][..], |k| k.as_bytes());
        let key = idempotency::parse_key(key)?;
        let claim = Claim {
            client: client.to_owned(),
            method: req.method.as_str().to_owned(),
            path: req.path_and_query.to_owned(),
            body_sha256: req.body_sha256().to_owned(),
        };
        let owner = owner_token();
        let begun = match self
            .store
            .begin(&key, &claim, &owner, self.settings.idempotency_ttl)
            .await
        {
            Ok(begun) => begun,
            Err(_) => {
                // The record may have been written before the answer was lost (a Redis reply
                // timing out): give it back, if it is this request's, or the key would answer
                // request_being_processed for its whole life with nothing ever sent.
                let _ = self.store.release(&key, &owner).await;
                return Err(Rejection::store_unavailable());
            }
        };
        match begun {
            Begun::Started => Ok(Admission::Forward(Some(Ticket {
                key,
                client: claim.client,
            }))),
            Begun::Existing(record) => {
                record.claim.compare(&claim)?;
                match record.response {
                    Some(response) => Ok(Admission::Replay(response)),
                    None => Err(Rejection::idempotence(
                        "request_being_processed",
                        "request is being processed: the first request with this Idempotency-Key has not been answered yet; send it again in a moment",
                    )),
                }
            }
        }
    }
}

/// Whether a request goes through its idempotency key: one that carries `Idempotency-Key` and
/// may change something (any method but GET, HEAD, OPTIONS and TRACE, which only read).
fn takes_idempotency_key(method: &Method, headers: &HeaderMap) -> bool {
    let reads_only = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    !reads_only && headers.contains_key(IDEMPOTENCY_KEY)
}

/// A token no other request of any gateway holds: 128 bits from the process's random hash keys
/// and a counter.
fn owner_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (a, b) = (RandomState::new(), RandomState::new());
    format!("{:016x}{:016x}", a.hash_one(n), b.hash_one(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;
    use http::HeaderValue;

    const NOW: i64 = 1_795_305_600;

    /// A front door with one client (secret `s3cret`) over an embedded store in a fresh directory.
    async fn door(settings: Settings) -> (FrontDoor, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "payerr-door-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let config = ClientConfig {
            id: "shop-1".into(),
            api_key: "ak_test_shop1".into(),
            secret_env: "S".into(),
            allowed_ips: vec![],
            rate_per_s: None,
            burst: None,
            expires_at: None,
            enabled: true,
        };
        let clients = Clients::load(&[config], |_| Some("s3cret".into())).unwrap();
        let store = Store::open(None, &dir, "").await.unwrap();
        (FrontDoor::new(clients, store, settings), dir)
    }

    fn headers(timestamp: i64, nonce: &str, body: &[u8], key: Option<&str>) -> HeaderMap {
        let text = signature::signing_string(
            "POST",
            "/acme/pay",
            &timestamp.to_string(),
            nonce,
            &signature::body_sha256_hex(body),
        );
        let mut h = HeaderMap::new();
        let mut set = |name: &'static str, value: String| {
            h.insert(name, HeaderValue::from_str(&value).unwrap());
        };
        set(API_KEY, "ak_test_shop1".into());
        set(TIMESTAMP, timestamp.to_string());
        set(NONCE, nonce.into());
        set(SIGNATURE, signature::sign(b"s3cret", &text));
        if let Some(key) = key {
            set(IDEMPOTENCY_KEY, key.into());
        }
        h
    }

    async fn check(door: &FrontDoor, headers: &HeaderMap) -> Result<Admission, &'static str> {
        let req = Presented::new(
            &Method::POST,
            "/acme/pay",
            headers,
            b"{}",
            "127.0.0.1".parse().unwrap(),
        );
        let client = door.authenticate(&req, NOW).await.map_err(|e| e.code)?;
        assert_eq!(client.unwrap().id, "shop-1");
        door.begin("shop-1", &req).await.map_err(|e| e.code)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_timestamp_window_is_inclusive_and_keys_can_be_required() {
        let settings = Settings {
            idempotency_required: true,
            ..Settings::default()
        };
        let (door, dir) = door(settings).await;
        let key = "5f0c6b1e-8a43-4d2b-9c7e-2f1a3b4c5d6e";
        for (offset, nonce, expected) in [
            (-300, "a", Ok(())),
            (300, "b", Ok(())),
            (-301, "c", Err("timestamp_invalid")),
            (301, "d", Err("timestamp_invalid")),
        ] {
            let h = headers(NOW + offset, nonce, b"{}", Some(key));
            let got = check(&door, &h).await.map(|_| ());
            // The second in-window request finds the key in flight: it got past the clock.
            let got = match got {
                Err("request_being_processed") => Ok(()),
                other => other,
            };
            assert_eq!(got, expected, "offset {offset}");
        }
        let without = headers(NOW, "e", b"{}", None);
        assert_eq!(
            check(&door, &without).await.map(|_| ()),
            Err("invalid_key_format")
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_completed_key_replays_and_a_refused_signature_keeps_its_nonce() {
        let (door, dir) = door(Settings::default()).await;
        let key = "6a1d7c2f-9b54-4e3c-a8d7-3f2b4c5d6e7f";
        let good = headers(NOW, "n1", b"{}", Some(key));
        let Ok(Admission::Forward(Some(ticket))) = check(&door, &good).await else {
            panic!("the first request is forwarded with a ticket");
        };
        let answer = StoredResponse {
            status: 402,
            headers: vec![("payerr-outcome".into(), b"failed".to_vec())],
            body: b"{\"declined\":true}".to_vec(),
        };
        door.complete(&ticket, &answer).await.unwrap();
        let mut bad = headers(NOW, "n2", b"{}", Some(key));
        bad.insert(SIGNATURE, HeaderValue::from_static("00"));
        assert_eq!(
            check(&door, &bad).await.map(|_| ()),
            Err("signature_invalid")
        );
        let retry = headers(NOW, "n2", b"{}", Some(key));
        match check(&door, &retry).await {
            Ok(Admission::Replay(stored)) => assert_eq!(stored, answer),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A proxy to the test Redis that holds back the reply to the first begin script for longer
    /// than the store waits, as a slow network or a busy Redis would: the script ran, the
    /// gateway never heard.
    async fn redis_losing_the_first_begin_reply() -> String {
        use std::sync::atomic::AtomicBool;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = crate::testutil::redis_url();
        let authority = url.trim_start_matches("redis://");
        let (credentials, rest) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (host, db) = rest.split_once('/').unwrap_or((rest, ""));
        let upstream = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:6379")
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(true));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let hold = Arc::new(AtomicBool::new(false));
                let (armed, held) = (armed.clone(), hold.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                        let begin = buf[..n].windows(8).any(|w| w == b"'owner',");
                        if begin && armed.swap(false, Ordering::SeqCst) {
                            held.store(true, Ordering::SeqCst);
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                        if hold.swap(false, Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let credentials = if credentials.is_empty() {
            String::new()
        } else {
            format!("{credentials}@")
        };
        let db = if db.is_empty() {
            String::new()
        } else {
            format!("/{db}")
        };
        format!("redis://{credentials}127.0.0.1:{port}{db}")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_key_whose_begin_reply_was_lost_is_given_back() {
        let url = redis_losing_the_first_begin_reply().await;
        let prefix = crate::testutil::prefix("lost-begin");
        let store = Store::open(Some(&url), std::path::Path::new("."), &prefix)
            .await
            .unwrap();
        let door = FrontDoor::new(Clients::default(), store, Settings::default());
        let mut headers = HeaderMap::new();
        headers.insert(
            IDEMPOTENCY_KEY,
            HeaderValue::from_static("7d2e9f4a-1b3c-4d5e-8f6a-7b8c9d0e1f2a"),
        );
        let req = Presented::new(
            &Method::POST,
            "/acme/pay",
            &headers,
            b"{}",
            "127.0.0.1".parse().unwrap(),
        );
        // The begin ran on Redis but its reply never came: nothing was forwarded, so the key is
        // given back and the client's retry is the first request, not "being processed".
        let lost = door.begin("", &req).await.map(|_| ()).map_err(|e| e.code);
        assert_eq!(lost, Err("store_unavailable"));
        match door.begin("", &req).await {
            Ok(Admission::Forward(Some(_))) => {}
            other => panic!("the retry is not the first request: {other:?}"),
        }
    }
}
