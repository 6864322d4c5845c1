//! The front door's state in Redis, so that every gateway sharing one Redis (and one key prefix)
//! acts as one gateway: a nonce is used once across all of them, a client's rate is counted once,
//! and an idempotency key reaches upstream once.
//!
//! # Keys
//!
//! Every key starts with the configured prefix:
//!
//! - `{prefix}nonce:{client}:{nonce}`: a string, present while the nonce is remembered (expires
//!   with the nonce's ttl). Client ids cannot contain `:`, so the key names one client and nonce.
//! - `{prefix}rate:{client}`: a hash (`tokens`, `at` in microseconds of Redis's clock), expiring
//!   once the bucket would be full again anyway, so idle clients cost nothing.
//! - `{prefix}idem:{key}`: a hash (`client`, `method`, `path`, `body_sha256`, and `response` once
//!   completed, as [`StoredResponse::encode`] bytes), expiring with the idempotency ttl. Keys are
//!   global, not per client: the record names its client, so another client's use of a key is
//!   seen and refused rather than silently treated as a new key.
//!
//! # Atomicity
//!
//! Each operation is one Redis command, so no two gateways can interleave inside it: a nonce is
//! claimed with `SET NX`, and the token bucket, the begin and the complete of an idempotency key
//! are Lua scripts, which Redis runs without interleaving any other command. The token bucket reads
//! Redis's `TIME`, so gateways whose clocks disagree still share one bucket clock.
//!
//! # When Redis is down
//!
//! Every connect and every round trip has a timeout; any failure (refused, timed out, closed,
//! garbled, or an error reply) is a [`StoreError`], and the connection it happened on is thrown
//! away rather than reused. The caller then forwards nothing and answers 503: without the shared
//! state it cannot promise one upstream call per key. There is no retry here, because a command
//! whose reply was lost may have run, and running it twice (claiming a nonce, beginning a key)
//! would turn the client's own retry into a false replay.

use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::timeout;

use crate::idempotency::{Claim, StoredResponse};
use crate::resp::{self, Reply};
use crate::store::{Begun, Bucket, Rate, Record, StoreError};

/// Longest wait for a connection (TCP, `AUTH`, `SELECT`): a Redis that takes longer is as good as
/// down, and the client is better served by a quick 503 than by a hung request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one command's reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept for reuse; connections opened in a burst beyond this are closed after.
const MAX_IDLE: usize = 16;
/// Connections open at once, per gateway: a burst of requests waits for one (at most
/// [`CONNECT_TIMEOUT`]) instead of opening hundreds, so that several gateways under load stay
/// well within Redis's `maxclients`.
const MAX_OPEN: usize = 64;
/// Most reply bytes buffered at once. The parser caps each part of a reply, but an array of many
/// capped parts could still add up; a store reply is far smaller than this.
const MAX_BUFFERED: usize = resp::MAX_BULK + 1024 * 1024;
/// A read buffer grown past this by one large reply is shrunk before the connection is reused.
const KEEP_BUFFER: usize = 1024 * 1024;
/// Longest ttl sent to Redis (about 300 years): Redis refuses an expiry that overflows its clock.
const MAX_TTL_MS: u128 = 10_000_000_000_000;

/// Token bucket. KEYS[1]: the bucket; ARGV: tokens per second, burst. Answers `{1, 0}` when a
/// token was taken, else `{0, ms until one whole token}`.
///
/// Numbers go back to Redis through `string.format`: Lua's default conversion keeps 14 digits,
/// which would cut a microsecond timestamp.
const TAKE_TOKEN: &str = r#"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
-- A clock that went back (a failover to another server) refills nothing, rather than holding
-- the bucket empty until the new clock catches up with the old one.
local elapsed = math.max(0, now - at)
tokens = math.min(burst, tokens + elapsed * rate / 1000000)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.min(math.ceil((1 - tokens) * 1000 / rate), 10000000000000)
end
-- Once the bucket would be full again, a missing key means the same thing: a full bucket.
local full_in = math.min(math.ceil((burst - tokens) * 1000 / rate) + 1000, 10000000000000)
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', full_in))
return {allowed, wait}
"#;

/// Begin an idempotency key. KEYS[1]: the record; ARGV: client, method, path, body_sha256, ttl in
/// ms, owner. Answers 1 when the record was created, else its fields and response (nil while in
/// flight).
const BEGIN: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'client', ARGV[1], 'method', ARGV[2], 'path', ARGV[3], 'body_sha256', ARGV[4], 'owner', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
end
return redis.call('HMGET', KEYS[1], 'client', 'method', 'path', 'body_sha256', 'response')
"#;

/// Complete an idempotency key. KEYS[1]: the record; ARGV: client, encoded response. Answers 1
/// when stored, 0 when not.
///
/// The key must exist: `HSET` on an expired record would create one without a ttl, kept forever
/// and with no claim. Only the client that began it completes it, and only once, so the first
/// answer is the one replayed. `HSET` leaves the ttl as it was.
const COMPLETE: &str = r#"
if redis.call('HGET', KEYS[1], 'client') ~= ARGV[1] then
  return 0
end
if redis.call('HEXISTS', KEYS[1], 'response') == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'response', ARGV[2])
return 1
"#;

/// Release an idempotency key that was never answered. KEYS[1]: the record; ARGV: owner. Deletes
/// the record only if this owner began it and it has no response: a record another request began,
/// or one with an answer, stays.
const RELEASE: &str = r#"
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HEXISTS', KEYS[1], 'response') == 0 then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// The front door's state in a Redis server shared by several gateways.
pub struct RedisStore {
    target: Target,
    prefix: String,
    /// Connections between operations. A plain mutex: it is held only to push or pop, never
    /// across an await.
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection in use ([`MAX_OPEN`]).
    open: Semaphore,
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`, port 6379 and db 0 by
    /// default; user and password percent-encoded) and checks with a `PING` that it is a Redis
    /// that accepts the credentials, so that a wrong URL fails at start-up rather than at the
    /// first request. Keys start with `prefix`. No message ever carries the password.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, String> {
        let target = parse_url(url)?;
        let store = RedisStore {
            target,
            prefix: prefix.to_owned(),
            idle: Mutex::new(Vec::new()),
            open: Semaphore::new(MAX_OPEN),
        };
        match store.call(&[b"PING"]).await.map_err(|e| e.0)? {
            Reply::Simple(s) if s == "PONG" => Ok(store),
            other => Err(store.message(&format!(
                "answered PING with {}, not PONG: is this a Redis server?",
                describe(&other)
            ))),
        }
    }

    /// Whether `nonce` is currently claimed by `client`.
    pub async fn nonce_seen(&self, client: &str, nonce: &str) -> Result<bool, StoreError> {
        let key = self.key("nonce:", &format!("{client}:{nonce}"));
        match self.call(&[b"EXISTS", key.as_bytes()]).await? {
            Reply::Integer(n) => Ok(n > 0),
            other => Err(self.unexpected("EXISTS", &other)),
        }
    }

    /// Claims `nonce` for `client` for `ttl`: `true` when it was free and is now claimed, `false`
    /// when it was already claimed.
    pub async fn claim_nonce(
        &self,
        client: &str,
        nonce: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.key("nonce:", &format!("{client}:{nonce}"));
        let ttl = millis(ttl);
        let args: [&[u8]; 6] = [b"SET", key.as_bytes(), b"1", b"NX", b"PX", ttl.as_bytes()];
        match self.call(&args).await? {
            Reply::Simple(s) if s == "OK" => Ok(true),
            Reply::Bulk(None) => Ok(false),
            other => Err(self.unexpected("SET NX", &other)),
        }
    }

    /// Takes one token from `client`'s bucket, which starts full (`burst` tokens) and refills at
    /// `per_second`, on Redis's clock.
    pub async fn take_token(&self, client: &str, bucket: Bucket) -> Result<Rate, StoreError> {
        // The configuration refuses these; the script would divide by them.
        if !(bucket.per_second.is_finite() && bucket.per_second > 0.0) {
            return Err(StoreError(format!(
                "rate limit of {} per second is not a positive number",
                bucket.per_second
            )));
        }
        let key = self.key("rate:", client);
        // f64's Display never uses an exponent, and Lua's tonumber reads every digit it writes.
        let per_second = bucket.per_second.to_string();
        let burst = bucket.burst.to_string();
        let reply = self
            .eval(TAKE_TOKEN, &key, &[per_second.as_bytes(), burst.as_bytes()])
            .await?;
        match &reply {
            Reply::Array(Some(items)) => match items.as_slice() {
                [Reply::Integer(1), _] => Ok(Rate::Allowed),
                [Reply::Integer(0), Reply::Integer(wait)] if *wait >= 0 => Ok(Rate::Limited {
                    retry_after: Duration::from_millis(wait.unsigned_abs()),
                }),
                _ => Err(self.unexpected("the token bucket script", &reply)),
            },
            _ => Err(self.unexpected("the token bucket script", &reply)),
        }
    }

    /// Records `key` as in flight for `claim` for `ttl`, unless it is already recorded: then the
    /// record is returned as it is, whoever began it.
    pub async fn begin(
        &self,
        key: &str,
        claim: &Claim,
        owner: &str,
        ttl: Duration,
    ) -> Result<Begun, StoreError> {
        let key = self.key("idem:", key);
        let ttl = millis(ttl);
        let args: [&[u8]; 6] = [
            claim.client.as_bytes(),
            claim.method.as_bytes(),
            claim.path.as_bytes(),
            claim.body_sha256.as_bytes(),
            ttl.as_bytes(),
            owner.as_bytes(),
        ];
        let reply = self.eval(BEGIN, &key, &args).await?;
        let fields = match reply {
            Reply::Integer(1) => return Ok(Begun::Started),
            Reply::Array(Some(fields)) => fields,
            other => return Err(self.unexpected("the begin script", &other)),
        };
        let mut fields = fields.into_iter();
        let mut text = |name: &str| match fields.next() {
            Some(Reply::Bulk(Some(bytes))) => String::from_utf8(bytes).map_err(|_| {
                self.error(&format!(
                    "idempotency record field {name} is not UTF-8: the record is corrupt"
                ))
            }),
            _ => Err(self.error(&format!(
                "idempotency record has no {name}: the key holds something else"
            ))),
        };
        let claim = Claim {
            client: text("client")?,
            method: text("method")?,
            path: text("path")?,
            body_sha256: text("body_sha256")?,
        };
        let response = match fields.next() {
            Some(Reply::Bulk(None)) => None,
            Some(Reply::Bulk(Some(bytes))) => {
                Some(StoredResponse::decode(&bytes).map_err(|e| {
                    self.error(&format!("stored idempotent response is unreadable: {e}"))
                })?)
            }
            _ => return Err(self.error("idempotency record reply has no response field")),
        };
        Ok(Begun::Existing(Record { claim, response }))
    }

    /// Stores the answer of the request that began `key`, if `client` began it and it has no
    /// answer yet; the key keeps its expiry. Otherwise (expired, another client's, already
    /// completed) nothing changes and this is not an error: the first answer stays the one that
    /// is replayed.
    pub async fn complete(
        &self,
        key: &str,
        client: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let key = self.key("idem:", key);
        let encoded = response.encode();
        match self
            .eval(COMPLETE, &key, &[client.as_bytes(), &encoded])
            .await?
        {
            Reply::Integer(0 | 1) => Ok(()),
            other => Err(self.unexpected("the complete script", &other)),
        }
    }

    /// Deletes `key`'s record if `owner` began it and it has no answer (see [`RELEASE`]).
    pub async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let key = self.key("idem:", key);
        match self.eval(RELEASE, &key, &[owner.as_bytes()]).await? {
            Reply::Integer(0 | 1) => Ok(()),
            other => Err(self.unexpected("the release script", &other)),
        }
    }

    /// The Redis key of one record: prefix, kind, name (see the module doc).
    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}{name}", self.prefix)
    }

    /// Runs `script` on one key. `EVAL` rather than `EVALSHA`: the script text is a few hundred
    /// bytes, and EVAL needs no cache bookkeeping (no `NOSCRIPT` after a Redis restart or a
    /// failover, no `SCRIPT LOAD` permission).
    async fn eval(&self, script: &str, key: &str, args: &[&[u8]]) -> Result<Reply, StoreError> {
        let mut command: Vec<&[u8]> = Vec::with_capacity(args.len() + 4);
        command.extend_from_slice(&[b"EVAL", script.as_bytes(), b"1", key.as_bytes()]);
        command.extend_from_slice(args);
        self.call(&command).await
    }

    /// One command, one reply, on a pooled connection or a new one. A Redis error reply is a
    /// `StoreError` too, but leaves the connection usable.
    async fn call(&self, args: &[&[u8]]) -> Result<Reply, StoreError> {
        let _permit = match timeout(CONNECT_TIMEOUT, self.open.acquire()).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; a wait past the timeout is Redis too slow to serve.
            _ => {
                return Err(self.error(&format!(
                    "all {MAX_OPEN} connections stayed busy for {} s",
                    CONNECT_TIMEOUT.as_secs_f64()
                )))
            }
        };
        let mut conn = match self.take_idle() {
            Some(conn) => conn,
            None => Connection::open(&self.target)
                .await
                .map_err(|e| self.error(&e))?,
        };
        let command = resp::command(args);
        let reply = match timeout(REPLY_TIMEOUT, conn.exchange(&command)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return Err(self.error(&e)),
            Err(_) => {
                return Err(self.error(&format!(
                    "no reply within {} s",
                    REPLY_TIMEOUT.as_secs_f64()
                )))
            }
        };
        self.give_back(conn);
        match reply {
            Reply::Error(e) => Err(self.error(&format!("answered with an error: {e}"))),
            reply => Ok(reply),
        }
    }

    /// The most recently used idle connection that still looks open; closed ones are dropped
    /// here, before a command is lost on them.
    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(conn) = idle.pop() {
            if conn.is_reusable() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next operation, unless enough are idle: connections opened for a burst
    /// would otherwise stay open on Redis for good.
    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// `what`, prefixed with which Redis said it. Built from the host, port and db only, never
    /// the URL, so that no password reaches a log.
    fn message(&self, what: &str) -> String {
        let t = &self.target;
        format!("Redis at {}/{}: {what}", t.address(), t.db)
    }

    fn error(&self, what: &str) -> StoreError {
        StoreError(self.message(what))
    }

    fn unexpected(&self, command: &str, reply: &Reply) -> StoreError {
        self.error(&format!(
            "unexpected reply to {command}: {}",
            describe(reply)
        ))
    }
}

/// A reply's shape, for messages: never its content, which may be a stored response.
fn describe(reply: &Reply) -> String {
    match reply {
        Reply::Simple(s) if s.len() <= 32 => format!("status {s:?}"),
        Reply::Simple(_) => "a long status line".to_owned(),
        Reply::Error(_) => "an error".to_owned(),
        Reply::Integer(n) => format!("integer {n}"),
        Reply::Bulk(None) => "nil".to_owned(),
        Reply::Bulk(Some(b)) => format!("a bulk string of {} bytes", b.len()),
        Reply::Array(None) => "a nil array".to_owned(),
        Reply::Array(Some(items)) => format!("an array of {} elements", items.len()),
    }
}

/// A ttl in whole milliseconds for `PX`/`PEXPIRE`, rounded up (a ttl is how long at least to
/// remember) and kept within what Redis accepts (at least 1, no overflow of its clock).
fn millis(ttl: Duration) -> String {
    ttl.as_nanos()
        .div_ceil(1_000_000)
        .clamp(1, MAX_TTL_MS)
        .to_string()
}

/// Where Redis is and how to log in, from the URL.
struct Target {
    host: String,
    port: u16,
    db: u32,
    credentials: Option<Credentials>,
}

/// `AUTH`'s arguments. Deliberately without `Debug`, so that the password cannot be printed by
/// accident.
struct Credentials {
    /// `None` for the `default` user (Redis before 6, or `requirepass`).
    user: Option<Vec<u8>>,
    password: Vec<u8>,
}

impl Target {
    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Reads `redis://[user:password@]host[:port][/db]`.
fn parse_url(url: &str) -> Result<Target, String> {
    let Some(rest) = url.strip_prefix("redis://") else {
        return Err(if url.starts_with("rediss://") {
            "Redis URL: rediss:// (TLS) is not supported; use redis:// on a trusted network"
                .to_owned()
        } else {
            "Redis URL must start with redis://".to_owned()
        });
    };
    // A password may hold any character, `/` and `@` included, so the credentials run to the last
    // `@`. Nothing after it is secret, and only that part is ever quoted in an error.
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    if rest.contains(['?', '#']) {
        return Err("Redis URL: query strings and fragments are not supported".to_owned());
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("Redis URL: unclosed [ in host {authority:?}"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("Redis URL: unexpected {after:?} after the host")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(format!(
                    "Redis URL: host {authority:?} has several colons; an IPv6 address goes in brackets, e.g. [::1]:6379"
                ))
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("Redis URL has no host, e.g. redis://127.0.0.1:6379".to_owned());
    }
    let port = match port {
        None => 6379,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => {
                return Err(format!(
                    "Redis URL: port {p:?} is not a number from 1 to 65535"
                ))
            }
        },
    };
    let db = match path {
        "" => 0,
        // Checked as digits first: u32's parser would also take a leading `+`.
        d if d.bytes().all(|b| b.is_ascii_digit()) => d
            .parse::<u32>()
            .map_err(|_| format!("Redis URL: database {d:?} is too large"))?,
        d => {
            return Err(format!(
                "Redis URL: database {d:?} is not a number, e.g. /0"
            ))
        }
    };
    let credentials = match userinfo {
        None | Some("") => None,
        Some(userinfo) => {
            let Some((user, password)) = userinfo.split_once(':') else {
                return Err(
                    "Redis URL: credentials must be user:password@ or :password@ (the user part has no colon)"
                        .to_owned(),
                );
            };
            let decode = |part: &str| {
                percent_decode(part).ok_or_else(|| {
                    "Redis URL: the credentials are not valid percent-encoding".to_owned()
                })
            };
            Some(Credentials {
                user: if user.is_empty() {
                    None
                } else {
                    Some(decode(user)?)
                },
                password: decode(password)?,
            })
        }
    };
    Ok(Target {
        host: host.to_owned(),
        port,
        db,
        credentials,
    })
}

/// `%XX` escapes to bytes; `None` on a broken escape. Passwords are bytes to Redis, so the result
/// need not be UTF-8.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// One connection to Redis, logged in and on the right database, with the bytes read but not yet
/// parsed.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    /// A new connection, logged in and on the target's database, within [`CONNECT_TIMEOUT`].
    async fn open(target: &Target) -> Result<Connection, String> {
        let opening = async {
            let stream = TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            // Every command is one small write followed by a wait for the reply: Nagle's delay
            // would only add latency.
            stream
                .set_nodelay(true)
                .map_err(|e| format!("cannot configure the connection: {e}"))?;
            let mut conn = Connection {
                stream,
                buf: Vec::new(),
            };
            if let Some(c) = &target.credentials {
                let mut args: Vec<&[u8]> = vec![b"AUTH"];
                if let Some(user) = &c.user {
                    args.push(user);
                }
                args.push(&c.password);
                // Redis's refusal names neither user nor password, so it can be passed on.
                match conn.exchange(&resp::command(&args)).await? {
                    Reply::Simple(_) => {}
                    Reply::Error(e) => return Err(format!("refused the credentials: {e}")),
                    other => return Err(format!("answered AUTH with {}", describe(&other))),
                }
            }
            if target.db != 0 {
                let db = target.db.to_string();
                match conn
                    .exchange(&resp::command(&[b"SELECT", db.as_bytes()]))
                    .await?
                {
                    Reply::Simple(_) => {}
                    Reply::Error(e) => return Err(format!("cannot select the database: {e}")),
                    other => return Err(format!("answered SELECT with {}", describe(&other))),
                }
            }
            Ok(conn)
        };
        timeout(CONNECT_TIMEOUT, opening)
            .await
            .map_err(|_| format!("no connection within {} s", CONNECT_TIMEOUT.as_secs_f64()))?
    }

    /// Sends one command and reads its reply. Nothing else may be in flight on the connection, so
    /// bytes past the reply mean the two sides disagree about where replies start: the connection
    /// is then unusable, and this is an error.
    async fn exchange(&mut self, command: &[u8]) -> Result<Reply, String> {
        self.stream
            .write_all(command)
            .await
            .map_err(|e| format!("cannot send: {e}"))?;
        loop {
            if let Some((reply, used)) =
                resp::parse(&self.buf).map_err(|e| format!("protocol error: {e}"))?
            {
                if used != self.buf.len() {
                    return Err("protocol error: bytes after the reply".to_owned());
                }
                self.buf.clear();
                if self.buf.capacity() > KEEP_BUFFER {
                    self.buf = Vec::new();
                }
                return Ok(reply);
            }
            if self.buf.len() > MAX_BUFFERED {
                return Err(format!("reply larger than {MAX_BUFFERED} bytes"));
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| format!("cannot read the reply: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".to_owned());
            }
        }
    }

    /// Whether an idle connection still looks open: Redis closes idle clients after its `timeout`
    /// and on restart, and a closed connection would fail the next request rather than this
    /// check. Anything readable while no command is in flight (end of file, stray bytes, an error)
    /// disqualifies it; only "nothing to read" keeps it.
    fn is_reusable(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

#[cfg(test)]
mod tests {
    //! What only the Redis store does: URLs, connections and misbehaving servers, several
    //! gateways on one Redis, the keys and ttls it leaves there, the token bucket's Lua script. The
    //! contract it shares with the embedded store is tested once for both, in `store`.

    use super::*;
    use crate::store::tests::racing_begins_start_once;
    use crate::store::Store;
    use crate::testutil::{
        claim, prefix, redis_store, redis_url, response, sleep_past_short, KEY, MINUTE, SHORT,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;
    use tokio::net::TcpListener;

    /// Two stores on one prefix: two gateways sharing their state.
    async fn two_gateways(name: &str) -> [RedisStore; 2] {
        let prefix = prefix(name);
        [redis_store(&prefix).await, redis_store(&prefix).await]
    }

    /// A listener on a free local port, and its `redis://` URL.
    async fn listen() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "redis://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        (listener, url)
    }

    #[test]
    fn urls_name_host_port_db_and_credentials() {
        type Expected = Option<(Option<&'static [u8]>, &'static [u8])>;
        let cases: [(&str, &str, u16, u32, Expected); 9] = [
            ("redis://localhost", "localhost", 6379, 0, None),
            ("redis://10.0.0.5:6380/3", "10.0.0.5", 6380, 3, None),
            (
                "redis://gateway:s%40cret%3A1@cache.internal/",
                "cache.internal",
                6379,
                0,
                Some((Some(b"gateway"), b"s@cret:1")),
            ),
            (
                "redis://:hunter2@h:7000/15",
                "h",
                7000,
                15,
                Some((None, b"hunter2")),
            ),
            // Unencoded `/`, `@` and `:` in a password still work: the credentials end at the
            // last @.
            (
                "redis://u:pa/ss@wo:rd@h:1/2",
                "h",
                1,
                2,
                Some((Some(b"u"), b"pa/ss@wo:rd")),
            ),
            ("redis://[::1]:7001/1", "::1", 7001, 1, None),
            ("redis://[::1]", "::1", 6379, 0, None),
            ("redis://@h", "h", 6379, 0, None),
            ("redis://h/0", "h", 6379, 0, None),
        ];
        for (url, host, port, db, credentials) in cases {
            let t = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((t.host.as_str(), t.port, t.db), (host, port, db), "{url}");
            let found = t
                .credentials
                .as_ref()
                .map(|c| (c.user.as_deref(), c.password.as_slice()));
            assert_eq!(found, credentials, "{url}");
        }
        assert_eq!(
            parse_url("redis://[::1]:7001/1").unwrap().address(),
            "[::1]:7001"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, says) in [
            ("http://h:6379", "must start with redis://"),
            ("rediss://h", "TLS"),
            ("redis://", "no host"),
            ("redis://:hunter2@", "no host"),
            ("redis://:hunter2@:6379", "no host"),
            ("redis://:hunter2@h:0", "port \"0\""),
            ("redis://:hunter2@h:70000", "port \"70000\""),
            ("redis://:hunter2@h:http", "port \"http\""),
            ("redis://:hunter2@h:", "port \"\""),
            ("redis://:hunter2@h/x", "database \"x\""),
            ("redis://:hunter2@h/+1", "database \"+1\""),
            ("redis://:hunter2@h/1/2", "database \"1/2\""),
            ("redis://:hunter2@h/99999999999", "too large"),
            ("redis://:hunter2@h/0?timeout=1", "query"),
            ("redis://::1:6379", "brackets"),
            ("redis://[::1", "unclosed"),
            ("redis://[::1]x", "after the host"),
            ("redis://hunter2@h", "user:password@"),
            ("redis://u:hunter2%zz@h", "percent-encoding"),
            ("redis://u:hunter2%4@h", "percent-encoding"),
        ] {
            let e = parse_url(url)
                .err()
                .unwrap_or_else(|| panic!("{url} parsed"));
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn ttls_round_up_to_a_millisecond_redis_accepts() {
        assert_eq!(millis(Duration::ZERO), "1");
        assert_eq!(millis(Duration::from_micros(1500)), "2");
        assert_eq!(millis(Duration::from_secs(61)), "61000");
        assert_eq!(millis(Duration::MAX), MAX_TTL_MS.to_string());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn nothing_listening_fails_quickly_and_keeps_the_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let e = RedisStore::connect(&format!("redis://u:hunter2@127.0.0.1:{port}"), "p:")
            .await
            .err()
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(
            e.contains(&format!("127.0.0.1:{port}")) && e.contains("cannot connect"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn wrong_credentials_or_database_fail_at_connect() {
        let host = parse_url(&redis_url()).unwrap().address();
        // A user and password the server does not have: refused, and not repeated.
        let e = RedisStore::connect(&format!("redis://payerr-nobody:hunter2@{host}"), "p:")
            .await
            .err()
            .unwrap();
        assert!(e.contains("refused the credentials"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = RedisStore::connect(&format!("redis://{host}/100000"), "p:")
            .await
            .err()
            .unwrap();
        assert!(e.contains("cannot select the database"), "{e}");
    }

    /// 200 requests on two gateways begin one key once, and either replays the answer; a nonce
    /// claimed on one is used on the other until its ttl is over.
    #[tokio::test(flavor = "multi_thread")]
    async fn two_gateways_on_one_redis_act_as_one() {
        let [a, b] = two_gateways("gateways").await;
        let (a, b) = (Arc::new(Store::Redis(a)), Arc::new(Store::Redis(b)));
        racing_begins_start_once(&[Arc::clone(&a), Arc::clone(&b)]).await;

        assert_eq!(a.claim_nonce("shop-1", "n:1", MINUTE).await, Ok(true));
        assert_eq!(b.claim_nonce("shop-1", "n:1", MINUTE).await, Ok(false));
        assert_eq!(b.nonce_seen("shop-1", "n:1").await, Ok(true));
        // And once its ttl is over, it is forgotten on both.
        assert_eq!(a.claim_nonce("shop-1", "n:2", SHORT).await, Ok(true));
        sleep_past_short().await;
        assert_eq!(b.nonce_seen("shop-1", "n:2").await, Ok(false));
        assert_eq!(b.claim_nonce("shop-1", "n:2", SHORT).await, Ok(true));
    }

    /// The record keeps the ttl begin gave it: a complete neither removes nor renews it, and a
    /// complete arriving after the record expired does not create one without a ttl.
    #[tokio::test(flavor = "multi_thread")]
    async fn records_keep_the_ttl_begin_set() {
        let store = redis_store(&prefix("ttl")).await;
        let key = store.key("idem:", KEY);
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
            Ok(Begun::Started)
        );
        store.complete(KEY, "shop-1", &response(201)).await.unwrap();
        let Reply::Integer(ttl) = store.call(&[b"PTTL", key.as_bytes()]).await.unwrap() else {
            panic!("PTTL answers an integer")
        };
        assert!(ttl > 0 && ttl <= 60_000, "{ttl}");

        store.call(&[b"DEL", key.as_bytes()]).await.unwrap();
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", SHORT).await,
            Ok(Begun::Started)
        );
        sleep_past_short().await;
        store.complete(KEY, "shop-1", &response(201)).await.unwrap();
        assert_eq!(
            store.call(&[b"EXISTS", key.as_bytes()]).await,
            Ok(Reply::Integer(0))
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unreadable_records_are_store_errors() {
        let store = redis_store(&prefix("corrupt")).await;
        let key = store.key("idem:", KEY);
        let begin_fails = || async {
            let begun = store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await;
            begun.expect_err("the record is unreadable").0
        };
        // Not a hash: Redis's WRONGTYPE error reply.
        store
            .call(&[b"SET", key.as_bytes(), b"x", b"PX", b"60000"])
            .await
            .unwrap();
        let e = begin_fails().await;
        assert!(e.contains("WRONGTYPE"), "{e}");
        // A hash whose response is not an encoded StoredResponse.
        store.call(&[b"DEL", key.as_bytes()]).await.unwrap();
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
            Ok(Begun::Started)
        );
        store
            .call(&[b"HSET", key.as_bytes(), b"response", b"\x09garbage"])
            .await
            .unwrap();
        let e = begin_fails().await;
        assert!(e.contains("unreadable"), "{e}");
        // The connection that carried the error replies is still good.
        assert_eq!(store.nonce_seen("shop-1", "n").await, Ok(false));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_bucket_starts_full_and_then_says_when_the_next_token_comes() {
        let store = redis_store(&prefix("bucket")).await;
        let slow = Bucket {
            per_second: 0.5,
            burst: 3,
        };
        for _ in 0..3 {
            assert_eq!(store.take_token("shop-1", slow).await, Ok(Rate::Allowed));
        }
        let Ok(Rate::Limited { retry_after }) = store.take_token("shop-1", slow).await else {
            panic!("the bucket is empty")
        };
        assert!(
            retry_after > Duration::from_millis(1900) && retry_after <= Duration::from_millis(2000),
            "{retry_after:?}"
        );
        // Another client has its own bucket.
        assert_eq!(store.take_token("shop-2", slow).await, Ok(Rate::Allowed));
        // The bucket key goes once it would be full again (6 s to refill, plus the margin).
        let key = store.key("rate:", "shop-1");
        let Ok(Reply::Integer(ttl)) = store.call(&[b"PTTL", key.as_bytes()]).await else {
            panic!("PTTL answers an integer")
        };
        assert!(ttl > 6_000 && ttl <= 7_000, "{ttl}");
        let broken = Bucket {
            per_second: 0.0,
            burst: 3,
        };
        assert!(store.take_token("shop-1", broken).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn two_gateways_share_one_rate_limit() {
        let stores = two_gateways("rate").await.map(Arc::new);
        let bucket = Bucket {
            per_second: 20.0,
            burst: 10,
        };
        // Paced at about a call per millisecond per task: hammering enough to empty the bucket
        // at once and catch every refill, without flooding a Redis others use.
        let started = Instant::now();
        let deadline = started + Duration::from_secs(1);
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let store = Arc::clone(&stores[i % 2]);
                tokio::spawn(async move {
                    let (mut allowed, mut limited) = (0u32, Vec::new());
                    while Instant::now() < deadline {
                        match store.take_token("shop-1", bucket).await.unwrap() {
                            Rate::Allowed => allowed += 1,
                            Rate::Limited { retry_after } => limited.push(retry_after),
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    (allowed, limited, Instant::now())
                })
            })
            .collect();
        let (mut allowed, mut limited, mut ended) = (0, Vec::new(), started);
        for task in tasks {
            let (a, l, e) = task.await.unwrap();
            allowed += a;
            limited.extend(l);
            ended = ended.max(e);
        }
        let elapsed = (ended - started).as_secs_f64();
        let expected = f64::from(bucket.burst) + bucket.per_second * elapsed;
        assert!(
            (f64::from(allowed) - expected).abs() <= expected * 0.1,
            "allowed {allowed}, expected about {expected:.1} in {elapsed:.3} s"
        );
        assert!(limited.len() > 100, "{} limited answers", limited.len());
        for retry_after in limited {
            assert!(
                retry_after > Duration::ZERO && retry_after <= Duration::from_millis(52),
                "{retry_after:?}"
            );
        }
    }

    /// How the fake server behaves once it has answered the start-up PING.
    #[derive(Clone, Copy)]
    enum Fake {
        /// Closes the connection on the next command.
        Close,
        /// Answers bytes that are not RESP.
        Garbage,
        /// Answers two replies to one command.
        TooMuch,
        /// Never answers.
        Silent,
    }

    /// Connections a fake server holds now.
    #[derive(Default)]
    struct Held {
        now: AtomicUsize,
    }

    /// A server that answers PING like Redis and everything else as `fake` says, with the
    /// connections it holds. Stops when the test's runtime does.
    async fn fake_redis(fake: Fake) -> (String, tokio::task::JoinHandle<()>, Arc<Held>) {
        let (listener, url) = listen().await;
        let held = Arc::new(Held::default());
        let counted = held.clone();
        let server = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.now.fetch_add(1, Ordering::SeqCst);
                let counted = counted.clone();
                tokio::spawn(async move {
                    // Counted out however the connection ends.
                    struct Out(Arc<Held>);
                    impl Drop for Out {
                        fn drop(&mut self) {
                            self.0.now.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _out = Out(counted);
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        let Ok(Some((command, used))) = resp::parse(&buf) else {
                            continue;
                        };
                        buf.drain(..used);
                        let ping = Reply::Array(Some(vec![Reply::Bulk(Some(b"PING".to_vec()))]));
                        let answer: &[u8] = match fake {
                            _ if command == ping => b"+PONG\r\n",
                            Fake::Close => return,
                            Fake::Garbage => b"HTTP/1.1 400 Bad Request\r\n\r\n",
                            Fake::TooMuch => b":0\r\n:1\r\n",
                            Fake::Silent => continue,
                        };
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, server, held)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_burst_opens_at_most_max_open_connections() {
        let (url, _server, held) = fake_redis(Fake::Silent).await;
        let store = Arc::new(RedisStore::connect(&url, "p:").await.unwrap());
        let calls: Vec<_> = (0..MAX_OPEN + 40)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.nonce_seen("shop-1", &format!("n{i}")).await })
            })
            .collect();
        // Halfway through the silent replies' timeout, every permit is out and the rest wait.
        tokio::time::sleep(REPLY_TIMEOUT / 2).await;
        let open = held.now.load(Ordering::SeqCst);
        assert_eq!(open, MAX_OPEN, "connections open at once");
        for call in calls {
            // Each either waited on a silent connection or for one to be free: an error, no hang.
            assert!(call.await.unwrap().is_err());
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_misbehaving_server_is_a_store_error() {
        for (fake, says) in [
            (Fake::Close, "closed the connection"),
            (Fake::Garbage, "protocol error"),
            (Fake::TooMuch, "bytes after the reply"),
            (Fake::Silent, "no reply within"),
        ] {
            let (url, _server, _) = fake_redis(fake).await;
            let store = RedisStore::connect(&url, "p:").await.unwrap();
            let e = store.nonce_seen("shop-1", "n").await.unwrap_err();
            assert!(e.0.contains(says), "{e}");
            assert!(e.0.contains("Redis at 127.0.0.1:"), "{e}");
            // The failed connection was dropped; the next operation opens another and fails
            // the same way rather than reading the first one's leftovers.
            let e = store.claim_nonce("shop-1", "n", MINUTE).await.unwrap_err();
            assert!(e.0.contains(says), "{e}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_server_that_goes_away_is_a_store_error() {
        // Answers the start-up PING, then closes its connection and stops listening.
        let (listener, url) = listen().await;
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut chunk = [0u8; 256];
            let _ = socket.read(&mut chunk).await;
            socket.write_all(b"+PONG\r\n").await.unwrap();
        });
        let store = RedisStore::connect(&url, "p:").await.unwrap();
        server.await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let e = store
            .begin(KEY, &claim("shop-1"), "owner-1", MINUTE)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        // The pooled connection was seen to be closed, so the error is the refused reconnect,
        // not a command lost on a dead connection.
        assert!(
            e.0.starts_with("Redis at 127.0.0.1:") && e.0.contains("cannot connect"),
            "{e}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_non_redis_server_fails_at_connect() {
        let (listener, url) = listen().await;
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut chunk = [0u8; 256];
                let _ = socket.read(&mut chunk).await;
                let _ = socket.write_all(b"+HELLO\r\n").await;
            }
        });
        let e = RedisStore::connect(&url, "p:").await.err().unwrap();
        assert!(e.contains("not PONG"), "{e}");
    }
}
