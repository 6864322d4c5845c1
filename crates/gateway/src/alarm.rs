//! Log lines for the operator when the event log loses events: dropped because its queue was full
//! (the disk stalled, the writer fell behind), or not written because the database refused them
//! (disk full, a file made read-only). `/metrics` counts both; a log line is what reaches the
//! person on call.

use std::time::Duration;

use payerr_events::EventLog;
use payerr_server::log::{Field, Logger};
use payerr_server::LogLevel;
use tokio::sync::oneshot;

/// How often the counters are read: at most one line of each kind per period.
pub(crate) const PERIOD: Duration = Duration::from_secs(10);

/// The event log's loss counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Losses {
    dropped: u64,
    failed_commits: u64,
    lost: u64,
}

impl Losses {
    fn of(events: &EventLog) -> Losses {
        Losses {
            dropped: events.dropped(),
            failed_commits: events.write_errors(),
            lost: events.lost(),
        }
    }
}

/// What changed between two readings that the operator must hear about.
#[derive(Debug, PartialEq, Eq)]
enum Alarm {
    /// Events dropped since the last reading, and in all.
    Dropped { since: u64, total: u64 },
    /// Commits that failed since the last reading, and the events given up in all.
    WriteFailed { since: u64, lost: u64 },
}

/// The alarms of the change from `before` to `now`, drops first.
fn alarms(before: Losses, now: Losses) -> impl Iterator<Item = Alarm> {
    let dropped = (now.dropped > before.dropped).then(|| Alarm::Dropped {
        since: now.dropped - before.dropped,
        total: now.dropped,
    });
    let failed = (now.failed_commits > before.failed_commits).then(|| Alarm::WriteFailed {
        since: now.failed_commits - before.failed_commits,
        lost: now.lost,
    });
    dropped.into_iter().chain(failed)
}

/// Reads the counters every [`PERIOD`] and logs what was lost since the last reading, until `stop`
/// resolves (or its sender is dropped); then reads them a last time, so that what the last moments
/// lost is told too.
pub(crate) async fn watch(events: &EventLog, logger: &Logger, mut stop: oneshot::Receiver<()>) {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut before = Losses::of(events);
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            _ = &mut stop => true,
        };
        let now = Losses::of(events);
        for alarm in alarms(before, now) {
            match alarm {
                Alarm::Dropped { since, total } => logger.log(
                    LogLevel::Warn,
                    "events dropped: the queue to the event database was full (the disk stalls or the writer is behind; see event_queue)",
                    &[
                        ("events_dropped", Field::U64(since)),
                        ("events_dropped_total", Field::U64(total)),
                    ],
                ),
                Alarm::WriteFailed { since, lost } => logger.log(
                    LogLevel::Error,
                    "the event database refused writes",
                    &[
                        ("failed_commits", Field::U64(since)),
                        ("events_lost_total", Field::U64(lost)),
                        (
                            "error",
                            Field::Str(&events.last_error().unwrap_or_default()),
                        ),
                    ],
                ),
            }
        }
        if stopping {
            return;
        }
        before = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn losses(dropped: u64, failed_commits: u64, lost: u64) -> Losses {
        Losses {
            dropped,
            failed_commits,
            lost,
        }
    }

    #[test]
    fn nothing_lost_since_the_last_reading_says_nothing() {
        let earlier = losses(5, 2, 10);
        assert_eq!(alarms(earlier, earlier).count(), 0);
        assert_eq!(alarms(Losses::default(), Losses::default()).count(), 0);
    }

    #[test]
    fn drops_and_failed_commits_are_told_with_what_changed_and_the_totals() {
        let alarms: Vec<Alarm> = alarms(losses(5, 2, 10), losses(8, 4, 1010)).collect();
        assert_eq!(
            alarms,
            [
                Alarm::Dropped { since: 3, total: 8 },
                Alarm::WriteFailed {
                    since: 2,
                    lost: 1010
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
        // A failed commit that was retried and succeeded loses nothing, and is still told.
        assert_eq!(
            alarms(losses(0, 0, 0), losses(0, 1, 0)).collect::<Vec<_>>(),
            [Alarm::WriteFailed { since: 1, lost: 0 }]
        );
    }
}
