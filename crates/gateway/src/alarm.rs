//! Log lines for the operator when the event log loses events: dropped because its queue was full
//! (the disk stalled, the writer fell behind), or not written because the database refused them
//! (disk full, a file made read-only). `/metrics` counts both; a log line is what reaches the
//! person on call.

use std::time::Duration;

use payerr_events::EventLog;
use payerr_server::log::{Field, Logger};
use payerr_server::LogLevel;
use tokio::sync::oneshot;

use crate::metrics::EventCounters;

/// How often the counters are read: at most one line of each kind per period.
const PERIOD: Duration = Duration::from_secs(10);

/// What changed between two readings that the operator must hear about.
#[derive(Debug, PartialEq, Eq)]
enum Alarm {
    /// Events dropped since the last reading, and in all.
    Dropped { since: u64, total: u64 },
    /// Commits refused since the last reading (of events, or of retention deletions), and the
    /// events given up since then and in all. A refused batch of events is tried once more, and a
    /// refused deletion waits for the next round: refusals need not lose anything.
    Refused {
        since: u64,
        lost_since: u64,
        lost_total: u64,
    },
}

/// The alarms of the change from `before` to `now`, drops first.
fn alarms(before: EventCounters, now: EventCounters) -> impl Iterator<Item = Alarm> {
    let dropped = (now.dropped > before.dropped).then(|| Alarm::Dropped {
        since: now.dropped - before.dropped,
        total: now.dropped,
    });
    // The writer counts a batch lost a moment after its second refusal: a reading in between sees
    // the refusal, the next one the loss alone.
    let refused = (now.write_errors > before.write_errors || now.lost > before.lost).then(|| {
        Alarm::Refused {
            since: now.write_errors - before.write_errors,
            lost_since: now.lost - before.lost,
            lost_total: now.lost,
        }
    });
    dropped.into_iter().chain(refused)
}

/// Reads the counters every [`PERIOD`] and logs what was lost since the last reading, until `stop`
/// resolves (or its sender is dropped); then reads them a last time. `events` must be freshly
/// opened: what it lost before the watch began (a first retention round refused, say) is told too.
pub(crate) async fn watch(events: &EventLog, logger: &Logger, mut stop: oneshot::Receiver<()>) {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut before = EventCounters::default();
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            _ = &mut stop => true,
        };
        let now = EventCounters::of(events);
        for alarm in alarms(before, now) {
            log(logger, events, &alarm);
        }
        if stopping {
            return;
        }
        before = now;
    }
}

fn log(logger: &Logger, events: &EventLog, alarm: &Alarm) {
    match *alarm {
        Alarm::Dropped { since, total } => logger.log(
            LogLevel::Warn,
            "events dropped: the queue to the event database was full (the disk stalls or the writer is behind; see event_queue)",
            &[
                ("events_dropped_since_last", Field::U64(since)),
                ("events_dropped_total", Field::U64(total)),
            ],
        ),
        Alarm::Refused {
            since,
            lost_since,
            lost_total,
        } => {
            let (level, message) = if lost_since > 0 {
                (
                    LogLevel::Error,
                    "events lost: the event database refused their commits",
                )
            } else {
                (
                    LogLevel::Warn,
                    "the event database refused commits; no event lost (a batch tried again, or a retention deletion)",
                )
            };
            logger.log(
                level,
                message,
                &[
                    ("event_write_errors_since_last", Field::U64(since)),
                    ("events_lost_since_last", Field::U64(lost_since)),
                    ("events_lost_total", Field::U64(lost_total)),
                    (
                        "error",
                        Field::Str(&events.last_error().unwrap_or_default()),
                    ),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn losses(dropped: u64, write_errors: u64, lost: u64) -> EventCounters {
        EventCounters {
            dropped,
            write_errors,
            lost,
            ..EventCounters::default()
        }
    }

    #[test]
    fn nothing_lost_since_the_last_reading_says_nothing() {
        let earlier = losses(5, 2, 10);
        assert_eq!(alarms(earlier, earlier).count(), 0);
        let none = EventCounters::default();
        assert_eq!(alarms(none, none).count(), 0);
    }

    #[test]
    fn drops_and_refusals_are_told_with_what_changed_and_the_totals() {
        let alarms: Vec<Alarm> = alarms(losses(5, 2, 10), losses(8, 4, 1010)).collect();
        assert_eq!(
            alarms,
            [
                Alarm::Dropped { since: 3, total: 8 },
                Alarm::Refused {
                    since: 2,
                    lost_since: 1000,
                    lost_total: 1010
                },
            ]
        );
    }

    #[test]
    fn each_kind_is_told_alone() {
        assert_eq!(
            alarms(losses(0, 0, 0), losses(1, 0, 0)).collect::<Vec<_>>(),
            [Alarm::Dropped { since: 1, total: 1 }]
        );
        // A refusal that lost nothing (a batch tried again, a deletion) is told too.
        assert_eq!(
            alarms(losses(0, 0, 0), losses(0, 1, 0)).collect::<Vec<_>>(),
            [Alarm::Refused {
                since: 1,
                lost_since: 0,
                lost_total: 0
            }]
        );
        // A loss counted after the reading that saw its refusals.
        assert_eq!(
            alarms(losses(0, 2, 0), losses(0, 2, 3)).collect::<Vec<_>>(),
            [Alarm::Refused {
                since: 0,
                lost_since: 3,
                lost_total: 3
            }]
        );
    }
}
