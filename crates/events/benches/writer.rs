//! What one event costs the writer thread: events like the gateway's (a first send, answered), recorded
//! in bursts of a full batch so that the writer commits batches of 1000 as under load, then the log
//! closed (everything written).
//!
//! Run: `cargo bench -p payerr-events --bench writer`. It prints the events written, the wall time,
//! and the writer's CPU time per event (the process's CPU time less the recording thread's, from
//! `/proc`, so Linux only). CPU time moves with what else the machine runs; for a count that does
//! not, run the built binary under callgrind and divide the writer thread's instructions by the
//! events: `valgrind --tool=callgrind --separate-threads=yes target/release/deps/writer-HASH`
//! (bench/README.md has figures). `PAYERR_BENCH_EVENTS` overrides the number of events (30,000).

use std::time::{Duration, Instant};

use payerr::{Category, Outcome};
use payerr_events::{AttemptKind, Event, EventLog, EventLogOptions};

const DEFAULT_EVENTS: usize = 30_000;

/// A batch's worth of events is queued at once; the writer then has this long to commit it, so that
/// the queue never fills (nothing is dropped) and every batch is full.
const PAUSE: Duration = Duration::from_millis(20);

/// User + system CPU time, in clock ticks, from a `/proc/…/stat` file (fields 14 and 15).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name, in parentheses, may hold spaces: the fields counted are after it.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn event(n: usize) -> Event {
    Event {
        at_ms: 1_700_000_000_000 + n as i64,
        request_id: format!("req_8a3f91c2_0b7d4e11_{n:08x}"),
        provider: "pts".to_owned(),
        dialect: "pts".to_owned(),
        method: "POST".to_owned(),
        path: "/v1/payments".to_owned(),
        attempt: 1,
        kind: AttemptKind::Send,
        http_status: Some(200),
        outcome: Outcome::Pending,
        category: Category::Pending,
        code: "pending".to_owned(),
        provider_code: Some("1000".to_owned()),
        latency_us: 300,
        error: None,
        operation_id: None,
    }
}

fn main() {
    let events = std::env::var("PAYERR_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_EVENTS);
    let dir = std::env::temp_dir().join(format!("payerr-bench-writer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = EventLogOptions::default();
    let batch = options.max_batch;
    let log = EventLog::open(&dir, options).unwrap_or_else(|e| panic!("{e}"));
    let (process0, recorder0) = (
        cpu_ticks("/proc/self/stat"),
        cpu_ticks("/proc/thread-self/stat"),
    );
    let started = Instant::now();
    for n in 0..events {
        log.record(event(n));
        if n % batch == batch - 1 {
            std::thread::sleep(PAUSE);
        }
    }
    let (recorded, dropped) = (log.recorded(), log.dropped());
    let recorder1 = cpu_ticks("/proc/thread-self/stat");
    if let Err(e) = log.close() {
        panic!("{e}");
    }
    let wall = started.elapsed();
    let process1 = cpu_ticks("/proc/self/stat");
    let _ = std::fs::remove_dir_all(&dir);
    println!("events {recorded} recorded and written, {dropped} dropped, in {wall:.2?} (pauses included)");
    match (process0, process1, recorder0, recorder1) {
        (Some(p0), Some(p1), Some(r0), Some(r1)) => {
            // Clock ticks are 1/100 s on Linux (the usual CLK_TCK).
            let writer_s = (p1 - p0).saturating_sub(r1 - r0) as f64 / 100.0;
            println!(
                "writer cpu per event: {:.2} µs",
                writer_s * 1e6 / recorded.max(1) as f64
            );
        }
        _ => println!("writer cpu per event: unknown (no /proc)"),
    }
}
