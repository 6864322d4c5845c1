//! What to do after an attempt: answer, retry, fail over or poll. Pure functions of the verdict and
//! the attempts so far, so that every money rule is tested without a network.
//!
//! The rules, in order (docs/gateway.md):
//! 1. An unknown outcome is never re-sent and never sent elsewhere: it is polled when the provider has
//!    a status path, else answered as unknown.
//! 2. A verdict that is both `retryable` and `failover_safe` is retried on the same provider while
//!    `retry.max_attempts` allows, after the provider's `Retry-After` or a full-jitter backoff; then it
//!    fails over when the provider has a fallback.
//! 3. A `failover_safe` verdict whose next action is `failover` goes to the fallback at once.
//! 4. Anything else is answered.

use payerr::{NextAction, Outcome, RetryPolicy, Verdict};

/// The step after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Give this answer to the client.
    Answer,
    /// Send the same request to the same provider after `delay_ms`.
    Retry {
        /// Wait before the retry.
        delay_ms: u64,
    },
    /// Send the same request to the fallback provider.
    Failover,
    /// Query the operation's status until it is known.
    Poll,
}

/// What is known besides the verdict.
#[derive(Clone, Copy, Debug)]
pub struct Situation {
    /// Attempts made on the current provider, this one included.
    pub attempts_on_provider: u32,
    /// The current provider has a fallback not tried yet.
    pub fallback_available: bool,
    /// The current provider has a status path and the operation has an id.
    pub can_poll: bool,
    /// The provider's `Retry-After`, in milliseconds, when it sent one.
    pub retry_after_ms: Option<u64>,
    /// A random number in `[0, 1)` for the jitter.
    pub jitter: f64,
}

/// Decides the next step.
pub fn next(verdict: &Verdict, at: &Situation, retry: &RetryPolicy) -> Next {
    if verdict.outcome == Outcome::Unknown {
        return if at.can_poll {
            Next::Poll
        } else {
            Next::Answer
        };
    }
    if verdict.outcome != Outcome::Failed || !verdict.failover_safe {
        return Next::Answer;
    }
    if verdict.retryable {
        if retry.allows_attempt(at.attempts_on_provider) {
            let delay_ms = at.retry_after_ms.unwrap_or_else(|| {
                retry.backoff_ms(at.attempts_on_provider.saturating_sub(1), at.jitter)
            });
            return Next::Retry { delay_ms };
        }
        return if at.fallback_available {
            Next::Failover
        } else {
            Next::Answer
        };
    }
    if verdict.next_action == NextAction::Failover && at.fallback_available {
        return Next::Failover;
    }
    Next::Answer
}

#[cfg(test)]
mod tests {
    use payerr::{Engine, Lang, NoResponse, Options, Response};

    use super::*;

    fn verdict(dialect: &str, status: u16, body: &str) -> Verdict {
        Engine::builtin()
            .unwrap()
            .normalize(
                &Response::new(status, body.as_bytes()),
                &Options {
                    dialect: Some(dialect),
                    lang: Lang::En,
                },
            )
            .unwrap()
    }

    fn situation() -> Situation {
        Situation {
            attempts_on_provider: 1,
            fallback_available: true,
            can_poll: true,
            retry_after_ms: None,
            jitter: 0.5,
        }
    }

    #[test]
    fn unknown_outcomes_are_polled_or_answered_never_resent() {
        let timeout = Engine::builtin()
            .unwrap()
            .no_response("pts", NoResponse::MaybeSent, Lang::En)
            .unwrap();
        let upstream_5xx = verdict("pts", 200, r#"{"code":9999,"message":"System error"}"#);
        for v in [timeout, upstream_5xx] {
            assert_eq!(v.outcome, Outcome::Unknown, "{v:?}");
            assert_eq!(next(&v, &situation(), &RetryPolicy::default()), Next::Poll);
            let no_poll = Situation {
                can_poll: false,
                ..situation()
            };
            assert_eq!(next(&v, &no_poll, &RetryPolicy::default()), Next::Answer);
        }
    }

    #[test]
    fn unavailable_is_retried_then_failed_over() {
        let v = Engine::builtin()
            .unwrap()
            .no_response("pts", NoResponse::NotSent, Lang::En)
            .unwrap();
        let retry = RetryPolicy::default();
        assert_eq!(
            next(&v, &situation(), &retry),
            Next::Retry { delay_ms: 100 }
        );
        let told = Situation {
            retry_after_ms: Some(1_000),
            attempts_on_provider: 2,
            ..situation()
        };
        assert_eq!(next(&v, &told, &retry), Next::Retry { delay_ms: 1_000 });
        let exhausted = Situation {
            attempts_on_provider: retry.max_attempts,
            ..situation()
        };
        assert_eq!(next(&v, &exhausted, &retry), Next::Failover);
        let alone = Situation {
            fallback_available: false,
            ..exhausted
        };
        assert_eq!(next(&v, &alone, &retry), Next::Answer);
    }

    #[test]
    fn declines_and_successes_are_answered() {
        let decline = verdict(
            "typed-error",
            402,
            r#"{"type":"payment_error","code":"expired_card","message":"Expired card"}"#,
        );
        let success = verdict("pts", 200, r#"{"code":1000,"message":"Request accepted"}"#);
        for v in [decline, success] {
            assert_eq!(
                next(&v, &situation(), &RetryPolicy::default()),
                Next::Answer,
                "{v:?}"
            );
        }
    }
}
