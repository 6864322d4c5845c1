//! The writer: a bounded queue in front of one thread that commits events in batches.
//!
//! The request path only does a non-blocking push onto a bounded channel. The writer thread sleeps
//! while the queue is empty (one wake-up per batch, not per event: while it lingers it is parked, and
//! a push to a channel nobody waits on is just an atomic operation), takes whatever is queued when the
//! batch is full or `flush_interval` has passed since the batch's first event, sanitizes it and
//! commits it in one transaction.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::event::{now_ms, Event};
use crate::sanitize::sanitize;
use crate::schema;

/// Settings of an [`EventLog`]; `EventLogOptions::default()` suits the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLogOptions {
    /// Most events waiting to be written; past it, [`EventLog::record`] drops (and counts) events.
    /// Default 65536 (a few tens of MiB at most). At least 1.
    pub capacity: usize,
    /// Longest time an accepted event waits in the queue before its batch is committed, while the
    /// writer keeps up. Default 100 ms.
    pub flush_interval: Duration,
    /// Most events committed in one transaction. Default 1000. At least 1.
    pub max_batch: usize,
    /// Events older than this are deleted by the writer: when the log opens, then every minute.
    /// Default `None`: events are kept for ever.
    pub retention: Option<Duration>,
}

impl Default for EventLogOptions {
    fn default() -> Self {
        EventLogOptions {
            capacity: 65_536,
            flush_interval: Duration::from_millis(100),
            max_batch: 1000,
            retention: None,
        }
    }
}

/// How often the writer deletes events older than the retention.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Events deleted per transaction: as many as a full batch writes, so each holds the write lock for
/// a few milliseconds only, and deleting keeps pace with writing under any load.
const PRUNE_CHUNK: usize = 1_000;

/// The event log of one data directory: [`record`](EventLog::record) from any thread, never blocking;
/// one writer thread commits to `DATA_DIR/events.sqlite3`.
///
/// Durability: see the [crate documentation](crate#durability).
#[derive(Debug)]
pub struct EventLog {
    queue: Option<SyncSender<Event>>,
    writer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// A full batch wakes the writer before its flush interval is over.
    max_batch: u64,
}

/// State shared by the callers and the writer thread.
#[derive(Debug, Default)]
struct Shared {
    recorded: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    lost: AtomicU64,
    pruned: AtomicU64,
    write_errors: AtomicU64,
    /// Events in the channel, so `record` can wake the writer when a batch is full.
    queued: AtomicU64,
    closing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl EventLog {
    /// Creates `data_dir` if needed, opens or creates `data_dir/events.sqlite3` (WAL,
    /// `synchronous=NORMAL`, schema migrated) and starts the writer thread.
    ///
    /// Errors name the path: an unwritable directory, a file that is not a payerr event database, a
    /// database written by a newer payerr.
    pub fn open(data_dir: &Path, options: EventLogOptions) -> Result<EventLog, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            format!(
                "cannot create the data directory {}: {e}",
                data_dir.display()
            )
        })?;
        let conn = schema::SCHEMA.open_for_writing(&schema::db_path(data_dir))?;
        let (queue, receiver) = mpsc::sync_channel(options.capacity.max(1));
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            conn,
            receiver,
            shared: Arc::clone(&shared),
            flush_interval: options.flush_interval,
            max_batch: options.max_batch.max(1),
            retention: options.retention,
            next_prune: Instant::now(),
        };
        let writer = thread::Builder::new()
            .name("payerr-events".to_owned())
            .spawn(move || writer.run())
            .map_err(|e| format!("cannot start the event writer thread: {e}"))?;
        Ok(EventLog {
            queue: Some(queue),
            writer: Some(writer),
            shared,
            max_batch: options.max_batch.max(1) as u64,
        })
    }

    /// Queues one attempt for writing. Never blocks and does no I/O: when the queue is full (the
    /// writer is behind, the disk is stalled) the event is dropped and counted in
    /// [`dropped`](EventLog::dropped). Sanitizing happens on the writer thread.
    pub fn record(&self, event: Event) {
        let Some(queue) = &self.queue else { return };
        // Counted before the push: the writer may commit the event before try_send returns.
        let queued = self.shared.queued.fetch_add(1, Ordering::Relaxed) + 1;
        match queue.try_send(event) {
            Ok(()) => {
                self.shared.recorded.fetch_add(1, Ordering::Relaxed);
                if queued >= self.max_batch {
                    self.wake_writer();
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Events accepted by [`record`](EventLog::record) (queued for writing).
    pub fn recorded(&self) -> u64 {
        self.shared.recorded.load(Ordering::Relaxed)
    }

    /// Events refused by [`record`](EventLog::record) because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Events committed to the database.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Accepted events given up after their batch failed to commit twice. After
    /// [`close`](EventLog::close), `recorded() == written() + lost()`.
    pub fn lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }

    /// Events deleted because they were older than the retention.
    pub fn pruned(&self) -> u64 {
        self.shared.pruned.load(Ordering::Relaxed)
    }

    /// Failed commits, of events or of deletions (disk full, I/O error, lock held too long by
    /// another process).
    pub fn write_errors(&self) -> u64 {
        self.shared.write_errors.load(Ordering::Relaxed)
    }

    /// The most recent write error, for the gateway's log.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .map_or(None, |last| last.clone())
    }

    /// Writes everything queued, stops the writer and waits for it. Ok when every accepted event is in
    /// the database; the error says how many were lost and why. Dropping the log does the same and
    /// ignores the result.
    pub fn close(mut self) -> Result<(), String> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), String> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        self.shared.closing.store(true, Ordering::Relaxed);
        // Dropping the only sender ends the writer's loop once the queue is empty.
        self.queue = None;
        writer.thread().unpark();
        writer
            .join()
            .map_err(|_| "the event writer thread panicked".to_owned())?;
        match self.lost() {
            0 => Ok(()),
            lost => Err(format!(
                "{lost} of {} events could not be written ({} failed commits; last error: {})",
                self.recorded(),
                self.write_errors(),
                self.last_error().unwrap_or_default()
            )),
        }
    }

    fn wake_writer(&self) {
        if let Some(writer) = &self.writer {
            // Cheap when the writer is not parked: an atomic swap, no system call.
            writer.thread().unpark();
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    receiver: Receiver<Event>,
    shared: Arc<Shared>,
    flush_interval: Duration,
    max_batch: usize,
    retention: Option<Duration>,
    /// When the next deletion round is due (with a retention).
    next_prune: Instant,
}

impl Writer {
    fn run(mut self) {
        // When the previous batch was taken: events queued since then are at most this old.
        let mut last_take = Instant::now();
        loop {
            self.prune_if_due();
            let (first, deadline) = match self.receiver.try_recv() {
                Ok(event) => (event, last_take + self.flush_interval),
                Err(TryRecvError::Empty) => match self.wait_for_event() {
                    // Idle until now: this event is the oldest, its batch waits from now on.
                    Ok(event) => (event, Instant::now() + self.flush_interval),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                Err(TryRecvError::Disconnected) => return,
            };
            self.linger(deadline);
            last_take = Instant::now();
            let batch = self.take(first);
            self.write(batch);
        }
    }

    /// Sleeps until an event comes, or (with a retention) until the next deletion round is due.
    fn wait_for_event(&self) -> Result<Event, RecvTimeoutError> {
        match self.retention {
            None => self
                .receiver
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(_) => self
                .receiver
                .recv_timeout(self.next_prune.saturating_duration_since(Instant::now())),
        }
    }

    /// Deletes events older than the retention when a round is due, in chunks of [`PRUNE_CHUNK`]
    /// until none is left. Events waiting to be written go first: while any is queued, one chunk
    /// goes per batch, and the round goes on after the batch.
    fn prune_if_due(&mut self) {
        let Some(retention) = self.retention else {
            return;
        };
        if Instant::now() < self.next_prune || self.shared.closing.load(Ordering::Relaxed) {
            return;
        }
        let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let before_ms = now_ms().saturating_sub(keep_ms);
        loop {
            match schema::prune(&mut self.conn, before_ms, PRUNE_CHUNK) {
                Ok(n) => {
                    self.shared.pruned.fetch_add(n as u64, Ordering::Relaxed);
                    if n < PRUNE_CHUNK {
                        break;
                    }
                }
                Err(e) => {
                    self.failed(&e);
                    break;
                }
            }
            if self.shared.queued.load(Ordering::Relaxed) > 0 {
                // Still due: the next chunk follows the batch.
                return;
            }
        }
        self.next_prune = Instant::now() + PRUNE_EVERY;
    }

    /// Counts a failed commit and keeps its error for the gateway's log.
    fn failed(&self, e: &rusqlite::Error) {
        self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.shared.last_error.lock() {
            *last = Some(e.to_string());
        }
    }

    /// Waits until the batch is full, `deadline` passes or the log is closing.
    fn linger(&self, deadline: Instant) {
        while !self.shared.closing.load(Ordering::Relaxed)
            && self.shared.queued.load(Ordering::Relaxed) < self.max_batch as u64
        {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            thread::park_timeout(deadline - now);
        }
    }

    /// `first` and whatever else is queued, up to `max_batch` events.
    fn take(&self, first: Event) -> Vec<Event> {
        let mut batch = vec![first];
        while batch.len() < self.max_batch {
            match self.receiver.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        self.shared
            .queued
            .fetch_sub(batch.len() as u64, Ordering::Relaxed);
        batch.into_iter().map(sanitize).collect()
    }

    /// Commits the batch; on failure waits a flush interval and tries once more, then gives the batch
    /// up (counted in `lost`). The writer never stops on an error: the next batch may well succeed.
    fn write(&mut self, batch: Vec<Event>) {
        for try_number in 0..2 {
            match schema::insert(&mut self.conn, &batch) {
                Ok(()) => {
                    self.shared
                        .written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    self.failed(&e);
                    if try_number == 0 && !self.shared.closing.load(Ordering::Relaxed) {
                        thread::park_timeout(self.flush_interval);
                    }
                }
            }
        }
        self.shared
            .lost
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_events;
    use crate::testutil::{event, Scratch};

    fn options(capacity: usize, flush_ms: u64) -> EventLogOptions {
        EventLogOptions {
            capacity,
            flush_interval: Duration::from_millis(flush_ms),
            ..EventLogOptions::default()
        }
    }

    /// Waits up to 10 s for `done`, so a slow machine fails no test and a broken writer does.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if done() {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        done()
    }

    /// A second connection to the log's database, as another process would have.
    fn other_connection(dir: &Path) -> Connection {
        let conn = Connection::open(schema::db_path(dir)).expect("the database opens");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn
    }

    /// The gateway shares one log between all its request tasks.
    #[test]
    fn the_log_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<EventLog>();
    }

    #[test]
    fn ten_thousand_events_recorded_quickly_are_all_written_by_close() {
        let dir = Scratch::new("batching");
        let log = EventLog::open(dir.path(), EventLogOptions::default()).expect("opens");
        for i in 0..10_000 {
            log.record(event(i, &format!("r{i}"), "acme", 1));
        }
        assert_eq!((log.recorded(), log.dropped()), (10_000, 0));
        let shared = Arc::clone(&log.shared);
        log.close().expect("closes cleanly");
        assert_eq!(shared.written.load(Ordering::Relaxed), 10_000);
        let events = read_events(dir.path()).expect("reads");
        assert_eq!(events.len(), 10_000);
        assert_eq!(events[9_999].request_id, "r9999");
    }

    #[test]
    fn an_event_is_committed_within_the_flush_interval_while_the_log_stays_open() {
        let dir = Scratch::new("interval");
        let log = EventLog::open(dir.path(), options(16, 20)).expect("opens");
        log.record(event(1, "alive", "acme", 1));
        assert!(eventually(|| log.written() == 1));
        // Visible to another reader (another process) before any close.
        let events = read_events(dir.path()).expect("reads");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].request_id, "alive");
        drop(log);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking_or_growing() {
        let dir = Scratch::new("bound");
        let log = EventLog::open(dir.path(), options(8, 20)).expect("opens");
        // Another process holds the write lock: the writer stalls in its first commit.
        let blocker = other_connection(dir.path());
        blocker
            .execute_batch("BEGIN IMMEDIATE")
            .expect("takes the lock");
        let started = Instant::now();
        for i in 0..1000 {
            log.record(event(i, "r", "acme", 1));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "record never waits for the writer"
        );
        assert_eq!(log.recorded() + log.dropped(), 1000);
        // At most the writer's one batch (the event it woke for plus a queue's worth) and one queue.
        assert!(log.recorded() <= 2 * 8 + 1, "recorded {}", log.recorded());
        blocker.execute_batch("COMMIT").expect("releases the lock");
        let recorded = log.recorded();
        let shared = Arc::clone(&log.shared);
        log.close().expect("closes cleanly");
        assert_eq!(shared.written.load(Ordering::Relaxed), recorded);
        assert_eq!(shared.write_errors.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn write_errors_are_counted_and_the_writer_goes_on() {
        let dir = Scratch::new("errors");
        let log = EventLog::open(dir.path(), options(16, 5)).expect("opens");
        let other = other_connection(dir.path());
        other
            .execute_batch("ALTER TABLE events RENAME TO parked")
            .expect("hides the table");
        log.record(event(1, "lost", "acme", 1));
        assert!(eventually(|| log.lost() == 1));
        assert_eq!(log.write_errors(), 2, "one try and one retry");
        assert!(log
            .last_error()
            .is_some_and(|e| e.contains("no such table")));
        other
            .execute_batch("ALTER TABLE parked RENAME TO events")
            .expect("restores the table");
        log.record(event(2, "kept", "acme", 1));
        assert!(eventually(|| log.written() == 1));
        let error = log.close().expect_err("a lost event is reported");
        assert!(
            error.contains("1 of 2 events could not be written"),
            "{error}"
        );
        let events = read_events(dir.path()).expect("reads");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].request_id, "kept");
    }

    #[test]
    fn dropping_the_log_writes_what_is_queued() {
        let dir = Scratch::new("drop");
        let log = EventLog::open(dir.path(), options(64, 60_000)).expect("opens");
        for i in 0..50 {
            log.record(event(i, "r", "acme", 1));
        }
        drop(log);
        assert_eq!(read_events(dir.path()).expect("reads").len(), 50);
    }

    /// Events at `ages_ms` before now, one per age, written straight to the database (as an earlier
    /// run of the gateway would have left them).
    fn aged_events(dir: &Path, ages_ms: &[i64]) {
        let log = EventLog::open(dir, EventLogOptions::default()).expect("opens");
        drop(log);
        let mut conn = other_connection(dir);
        let now = now_ms();
        let events: Vec<Event> = ages_ms
            .iter()
            .map(|age| event(now - age, &format!("age-{age}"), "acme", 1))
            .collect();
        schema::insert(&mut conn, &events).expect("inserts");
    }

    #[test]
    fn with_a_retention_older_events_are_deleted_when_the_log_opens_and_newer_ones_kept() {
        const DAY_MS: i64 = 86_400_000;
        let dir = Scratch::new("retention");
        aged_events(
            dir.path(),
            &[3 * DAY_MS, 2 * DAY_MS + 1, 2 * DAY_MS - 60_000, 1_000],
        );
        let options = EventLogOptions {
            retention: Some(Duration::from_secs(2 * 86_400)),
            ..options(16, 20)
        };
        let log = EventLog::open(dir.path(), options).expect("opens");
        assert!(eventually(|| log.pruned() == 2));
        // Recording goes on as before; the writer was idle in between, not stuck.
        log.record(event(now_ms(), "new", "acme", 1));
        assert!(eventually(|| log.written() == 1));
        log.close().expect("closes cleanly");
        let ids: Vec<String> = read_events(dir.path())
            .expect("reads")
            .into_iter()
            .map(|e| e.request_id)
            .collect();
        assert_eq!(
            ids,
            [
                format!("age-{}", 2 * DAY_MS - 60_000),
                "age-1000".into(),
                "new".into()
            ]
        );
    }

    #[test]
    fn without_a_retention_nothing_is_deleted() {
        let dir = Scratch::new("keep");
        aged_events(dir.path(), &[3_650 * 86_400_000, 1_000]);
        let log = EventLog::open(dir.path(), options(16, 20)).expect("opens");
        log.record(event(now_ms(), "new", "acme", 1));
        assert!(eventually(|| log.written() == 1));
        assert_eq!(log.pruned(), 0);
        log.close().expect("closes cleanly");
        assert_eq!(read_events(dir.path()).expect("reads").len(), 3);
    }

    #[test]
    fn a_large_backlog_is_deleted_while_new_events_keep_being_written() {
        let dir = Scratch::new("backlog");
        let ages: Vec<i64> = (0..(20 * PRUNE_CHUNK + 7) as i64)
            .map(|i| 86_400_000 + i)
            .collect();
        aged_events(dir.path(), &ages);
        let options = EventLogOptions {
            retention: Some(Duration::from_secs(3_600)),
            ..options(65_536, 5)
        };
        let log = EventLog::open(dir.path(), options).expect("opens");
        let mut recorded = 0;
        while log.pruned() < ages.len() as u64 && recorded < 50_000 {
            log.record(event(now_ms(), &format!("new-{recorded}"), "acme", 1));
            recorded += 1;
            if recorded % 100 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        assert!(eventually(|| log.pruned() == ages.len() as u64));
        assert_eq!(log.dropped(), 0);
        log.close().expect("closes cleanly");
        let events = read_events(dir.path()).expect("reads");
        assert_eq!(events.len(), recorded);
        assert!(events.iter().all(|e| e.request_id.starts_with("new-")));
    }
}
