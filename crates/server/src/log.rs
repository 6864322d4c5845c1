//! Structured logs on stderr, shared by the service, the simulator and the gateway. Lines are written
//! by a thread of their own so that a slow terminal or pipe never slows a request: they go through a
//! bounded queue and are counted, not waited for, when it is full.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{LogFormat, LogLevel};

/// Lines that may wait for the writer; past this they are dropped and counted.
const QUEUE: usize = 16 * 1024;

/// A value in a log line.
#[derive(Clone, Copy, Debug)]
pub enum Field<'a> {
    /// Text (quoted in text format when it has spaces).
    Str(&'a str),
    /// A count, status or duration.
    U64(u64),
}

/// The service's logger. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Logger {
    format: LogFormat,
    level: LogLevel,
    queue: SyncSender<String>,
    dropped: AtomicU64,
}

impl Logger {
    /// A logger writing to `out` from a thread; the thread ends, having written everything queued,
    /// when the last `Logger` is dropped (join the handle to wait for it).
    pub fn start(
        format: LogFormat,
        level: LogLevel,
        out: Box<dyn Write + Send>,
    ) -> (Logger, JoinHandle<()>) {
        let (queue, lines) = mpsc::sync_channel(QUEUE);
        let writer = thread::Builder::new()
            .name("payerr-log".to_owned())
            .spawn(move || write_lines(lines, out))
            .unwrap_or_else(|e| panic!("cannot start the log thread: {e}"));
        let logger = Logger {
            format,
            level,
            queue,
            dropped: AtomicU64::new(0),
        };
        (logger, writer)
    }

    /// Whether lines at `level` are written.
    pub fn enabled(&self, level: LogLevel) -> bool {
        level <= self.level
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Logs one event with its fields, if `level` is enabled.
    pub fn log(&self, level: LogLevel, message: &str, fields: &[(&str, Field<'_>)]) {
        if !self.enabled(level) {
            return;
        }
        let line = format_line(self.format, SystemTime::now(), level, message, fields);
        match self.queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn write_lines(lines: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = io::BufWriter::new(out);
    while let Ok(line) = lines.recv() {
        // Write what is queued in one go, then flush so a reader sees it without delay.
        let mut next = Some(line);
        while let Some(line) = next {
            if out.write_all(line.as_bytes()).is_err() {
                return;
            }
            next = lines.try_recv().ok();
        }
        if out.flush().is_err() {
            return;
        }
    }
}

fn format_line(
    format: LogFormat,
    at: SystemTime,
    level: LogLevel,
    message: &str,
    fields: &[(&str, Field<'_>)],
) -> String {
    let mut line = String::with_capacity(160);
    let ts = rfc3339(at);
    match format {
        LogFormat::Json => {
            line.push_str("{\"ts\":\"");
            line.push_str(&ts);
            line.push_str("\",\"level\":\"");
            line.push_str(level.as_str());
            line.push_str("\",\"msg\":");
            push_json_string(&mut line, message);
            for (name, value) in fields {
                line.push(',');
                push_json_string(&mut line, name);
                line.push(':');
                match value {
                    Field::Str(s) => push_json_string(&mut line, s),
                    Field::U64(n) => {
                        let _ = write!(line, "{n}");
                    }
                }
            }
            line.push('}');
        }
        LogFormat::Text => {
            let _ = write!(
                line,
                "{ts} {:<5} {message}",
                level.as_str().to_ascii_uppercase()
            );
            for (name, value) in fields {
                let _ = match value {
                    Field::Str(s) if s.is_empty() || s.contains([' ', '"', '=', '\n']) => {
                        write!(line, " {name}={s:?}")
                    }
                    Field::Str(s) => write!(line, " {name}={s}"),
                    Field::U64(n) => write!(line, " {name}={n}"),
                };
            }
        }
    }
    line.push('\n');
    line
}

fn push_json_string(line: &mut String, s: &str) {
    // serde_json escapes exactly as JSON requires; a String writer cannot fail.
    line.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// `2026-11-21T10:00:00.123Z` (UTC, milliseconds).
pub fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap_day = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(leap_day), "2024-02-29T12:34:56.789Z");
        let end_of_century = UNIX_EPOCH + Duration::from_secs(4_107_542_399);
        assert_eq!(rfc3339(end_of_century), "2100-02-28T23:59:59.000Z");
    }

    #[test]
    fn json_lines_are_one_object_with_escaped_fields() {
        let line = format_line(
            LogFormat::Json,
            UNIX_EPOCH,
            LogLevel::Warn,
            "reload failed",
            &[
                ("error", Field::Str("line 1\n\"bad\"")),
                ("status", Field::U64(400)),
            ],
        );
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "reload failed");
        assert_eq!(v["error"], "line 1\n\"bad\"");
        assert_eq!(v["status"], 400);
    }

    #[test]
    fn text_lines_quote_values_with_spaces() {
        let line = format_line(
            LogFormat::Text,
            UNIX_EPOCH,
            LogLevel::Info,
            "request",
            &[("path", Field::Str("/v1/search")), ("q", Field::Str("a b"))],
        );
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z INFO  request path=/v1/search q=\"a b\"\n"
        );
    }

    #[test]
    fn the_writer_drains_everything_queued_before_it_ends() {
        #[derive(Clone, Default)]
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let (logger, writer) =
            Logger::start(LogFormat::Json, LogLevel::Info, Box::new(sink.clone()));
        for i in 0..100 {
            logger.log(LogLevel::Info, "n", &[("i", Field::U64(i))]);
        }
        logger.log(LogLevel::Debug, "hidden", &[]);
        drop(logger);
        writer.join().unwrap();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 100);
        assert!(!text.contains("hidden"));
    }
}
