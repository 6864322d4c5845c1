//! The database file: where it lives, its schema and its versions, and how each side opens it.
//!
//! The file is marked as ours with `PRAGMA application_id` and versioned with `PRAGMA user_version`
//! ([`SCHEMA`], opened by [`payerr_sqlite`]), so a foreign SQLite file (or a newer payerr's) is
//! refused with a clear error instead of being written into or misread.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use payerr::Outcome;
use payerr_sqlite::Schema;
use rusqlite::types::Type;
use rusqlite::{params, CachedStatement, Connection, Row, TransactionBehavior};

use crate::event::Event;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "events.sqlite3";

/// `PRAGMA application_id` of payerr event databases ("PYEV").
pub const APPLICATION_ID: i32 = 0x5059_4556;

/// Schema migrations: `MIGRATIONS[n]` takes a database from version `n` to `n + 1`. Append only.
const MIGRATIONS: [&str; 2] = [
    // Version 1. Enums are stored as their snake_case names, times as integers, so `sqlite3` reads it
    // as is. Indexes serve the report (a time window) and lookups by client request.
    "CREATE TABLE events (
        id            INTEGER PRIMARY KEY,
        at_ms         INTEGER NOT NULL,
        request_id    TEXT    NOT NULL,
        provider      TEXT    NOT NULL,
        dialect       TEXT    NOT NULL,
        method        TEXT    NOT NULL,
        path          TEXT    NOT NULL,
        attempt       INTEGER NOT NULL,
        kind          TEXT    NOT NULL,
        http_status   INTEGER,
        outcome       TEXT    NOT NULL,
        category      TEXT    NOT NULL,
        code          TEXT    NOT NULL,
        provider_code TEXT,
        latency_us    INTEGER NOT NULL,
        error         TEXT,
        operation_id  TEXT
    );
    CREATE INDEX events_at_ms ON events (at_ms);
    CREATE INDEX events_provider_at_ms ON events (provider, at_ms);
    CREATE INDEX events_request_id ON events (request_id, attempt);",
    // Version 2. No query used the (provider, at_ms) index: the report reads a time window through
    // `events_at_ms` and groups by provider. Keeping it up to date cost the writer 2,500 of its
    // 16,900 instructions per event (by callgrind, bench/gateway-cost.sh).
    // IF EXISTS: a file whose index was dropped by hand is upgraded all the same.
    "DROP INDEX IF EXISTS events_provider_at_ms;",
];

/// The event database for [`payerr_sqlite`]: it opens the file for writing (WAL, so readers such as
/// the report never block the writer; `synchronous=NORMAL`) and for reading, and refuses a foreign,
/// newer or (for reading) older or empty file.
pub const SCHEMA: Schema = Schema {
    name: "event database",
    application_id: APPLICATION_ID,
    migrations: &MIGRATIONS,
};

/// The schema version this build writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = SCHEMA.version();

/// The database file of a data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

/// Opens the database of an existing data directory read-only; a missing directory or file is an
/// error that names it (reading never creates either).
pub fn open_existing(data_dir: &Path) -> Result<Connection, String> {
    let problem = match std::fs::metadata(data_dir) {
        Err(_) => Some("does not exist"),
        Ok(meta) if !meta.is_dir() => Some("is not a directory"),
        Ok(_) => None,
    };
    if let Some(problem) = problem {
        return Err(format!(
            "no events: the data directory {} {problem} (is it the gateway's data_dir?)",
            data_dir.display()
        ));
    }
    let path = db_path(data_dir);
    if !path.exists() {
        return Err(format!(
            "no events: the gateway has not written to {} yet (no {})",
            data_dir.display(),
            DB_FILE
        ));
    }
    // Read-only, as the report does while the gateway may be writing.
    SCHEMA.open_for_reading(&path)
}

/// Rows per `INSERT` statement. One statement per row would pay SQLite's per-statement work (a
/// cursor opened and closed on the table and on each index, the bindings reset) for every event.
/// Many rows per statement hold more bound texts than SQLite's per-connection small-allocation pool
/// (its lookaside) has room for, and each further text costs a malloc: by callgrind, the writer's
/// instructions per event are 20,700 at 4 rows, 18,700 at 10 or 12, 19,100 at 14, 20,300 at 32.
const ROWS_PER_INSERT: usize = 10;

/// Values of one row, in the order of [`COLUMNS`].
const VALUES_PER_ROW: usize = 16;

/// `INSERT OR ROLLBACK INTO events ({COLUMNS}) VALUES (?, …), …` for `rows` rows.
///
/// `OR ROLLBACK`: a failed statement fails its whole batch anyway (the transaction is rolled back
/// and the batch retried), and without it SQLite keeps a statement journal for each multi-row
/// statement so that it could undo that statement alone (about 1,000 instructions per event, by
/// callgrind).
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; VALUES_PER_ROW].join(", "));
    format!(
        "INSERT OR ROLLBACK INTO events ({COLUMNS}) VALUES {}",
        vec![row; rows].join(", ")
    )
}

/// The statement of a whole chunk, and of one row.
static INSERT_ROWS: LazyLock<String> = LazyLock::new(|| insert_sql(ROWS_PER_INSERT));
static INSERT_ROW: LazyLock<String> = LazyLock::new(|| insert_sql(1));

/// Inserts a batch (already sanitized) in one transaction, in the batch's order.
pub fn insert(conn: &mut Connection, events: &[Event]) -> rusqlite::Result<()> {
    // IMMEDIATE takes the write lock at BEGIN, where the busy timeout applies.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        // Whole statements of ROWS_PER_INSERT rows, then the rest one row at a time; both are
        // prepared once per connection, not per batch (parsing 160 parameters costs more than a
        // small batch's rows).
        let mut chunks = events.chunks_exact(ROWS_PER_INSERT);
        if chunks.len() > 0 {
            let mut stmt = tx.prepare_cached(&INSERT_ROWS)?;
            for chunk in &mut chunks {
                insert_rows(&mut stmt, chunk)?;
            }
        }
        if !chunks.remainder().is_empty() {
            let mut stmt = tx.prepare_cached(&INSERT_ROW)?;
            for row in chunks.remainder() {
                insert_rows(&mut stmt, std::slice::from_ref(row))?;
            }
        }
    }
    tx.commit()
}

/// Binds every value of `rows` (the statement has exactly as many rows) and runs the statement.
fn insert_rows(stmt: &mut CachedStatement<'_>, rows: &[Event]) -> rusqlite::Result<()> {
    for (n, e) in rows.iter().enumerate() {
        let at = n * VALUES_PER_ROW;
        stmt.raw_bind_parameter(at + 1, e.at_ms)?;
        stmt.raw_bind_parameter(at + 2, &e.request_id)?;
        stmt.raw_bind_parameter(at + 3, &e.provider)?;
        stmt.raw_bind_parameter(at + 4, &e.dialect)?;
        stmt.raw_bind_parameter(at + 5, &e.method)?;
        stmt.raw_bind_parameter(at + 6, &e.path)?;
        stmt.raw_bind_parameter(at + 7, e.attempt)?;
        stmt.raw_bind_parameter(at + 8, e.kind.as_str())?;
        stmt.raw_bind_parameter(at + 9, e.http_status)?;
        stmt.raw_bind_parameter(at + 10, e.outcome.as_str())?;
        stmt.raw_bind_parameter(at + 11, e.category.as_str())?;
        stmt.raw_bind_parameter(at + 12, &e.code)?;
        stmt.raw_bind_parameter(at + 13, &e.provider_code)?;
        // SQLite integers are signed 64-bit; 2^63 µs is 292,000 years.
        stmt.raw_bind_parameter(at + 14, i64::try_from(e.latency_us).unwrap_or(i64::MAX))?;
        stmt.raw_bind_parameter(at + 15, &e.error)?;
        stmt.raw_bind_parameter(at + 16, &e.operation_id)?;
    }
    stmt.raw_execute().map(drop)
}

/// Deletes at most `max_rows` events older than `before_ms` (through the `at_ms` index), in one
/// transaction; returns how many it deleted. The caller repeats while a full `max_rows` went, so
/// that no single transaction holds the write lock for long.
pub fn prune(conn: &mut Connection, before_ms: i64, max_rows: usize) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let deleted = tx.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at_ms < ?1 LIMIT ?2)",
        params![before_ms, i64::try_from(max_rows).unwrap_or(i64::MAX)],
    )?;
    tx.commit()?;
    Ok(deleted)
}

/// Columns read back by [`read_row`], in its order.
pub const COLUMNS: &str = "at_ms, request_id, provider, dialect, method, path, attempt, kind, \
    http_status, outcome, category, code, provider_code, latency_us, error, operation_id";

/// One row of `SELECT {COLUMNS}` as an event; a value this build does not know is an error, not a
/// panic.
pub fn read_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        at_ms: row.get(0)?,
        request_id: row.get(1)?,
        provider: row.get(2)?,
        dialect: row.get(3)?,
        method: row.get(4)?,
        path: row.get(5)?,
        attempt: row.get(6)?,
        kind: text_enum(row, 7, |s| s.parse().ok())?,
        http_status: row.get(8)?,
        outcome: text_enum(row, 9, |s| {
            Outcome::ALL.iter().copied().find(|o| o.as_str() == s)
        })?,
        category: text_enum(row, 10, |s| s.parse().ok())?,
        code: row.get(11)?,
        provider_code: row.get(12)?,
        latency_us: row.get(13)?,
        error: row.get(14)?,
        operation_id: row.get(15)?,
    })
}

/// An enum stored as its name.
fn text_enum<T>(
    row: &Row<'_>,
    i: usize,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(i)?;
    parse(&text).ok_or_else(|| {
        let e = format!("unknown value {text:?}");
        rusqlite::Error::FromSqlConversionFailure(i, Type::Text, e.into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{event, Scratch};
    use crate::AttemptKind;
    use crate::{read_events, request_ids, EventLog, EventLogOptions};
    use payerr::Category;

    fn pragma<T: rusqlite::types::FromSql>(path: &Path, name: &str) -> T {
        let conn = Connection::open(path).expect("opens");
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .expect("pragma reads")
    }

    fn write(dir: &Path, request_ids: &[&str]) -> Result<(), String> {
        let log = EventLog::open(dir, EventLogOptions::default())?;
        for id in request_ids {
            log.record(event(1, id, "acme", 1));
        }
        log.close()
    }

    /// Opening, marking, WAL and migrating are `payerr_sqlite`'s (tested there); this is the event
    /// database's own mark, version and schema.
    #[test]
    fn a_new_database_is_versioned_marked_and_indexed() {
        let dir = Scratch::new("new");
        write(dir.path(), &["a"]).expect("writes");
        let path = db_path(dir.path());
        assert_eq!(pragma::<i64>(&path, "user_version"), SCHEMA_VERSION);
        assert_eq!(pragma::<i32>(&path, "application_id"), APPLICATION_ID);
        let indexes: Vec<String> = Connection::open(&path)
            .and_then(|c| {
                let mut stmt =
                    c.prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")?;
                let names = stmt.query_map([], |r| r.get(0))?;
                names.collect()
            })
            .expect("lists indexes");
        assert_eq!(indexes, ["events_at_ms", "events_request_id"]);
    }

    /// A file of version 1 is upgraded when the gateway opens it, its events kept, and then read;
    /// also one whose provider index was already dropped by hand.
    #[test]
    fn a_version_1_database_is_upgraded_and_keeps_its_events() {
        for index_dropped_by_hand in [false, true] {
            upgrade_version_1(index_dropped_by_hand);
        }
    }

    fn upgrade_version_1(index_dropped_by_hand: bool) {
        let dir = Scratch::new(&format!("version-1-{index_dropped_by_hand}"));
        std::fs::create_dir_all(dir.path()).expect("creates the directory");
        let path = db_path(dir.path());
        let old = event(1, "old", "acme", 1);
        {
            let mut conn = Connection::open(&path).expect("creates");
            conn.execute_batch(MIGRATIONS[0])
                .expect("version 1's schema");
            if index_dropped_by_hand {
                conn.execute_batch("DROP INDEX events_provider_at_ms")
                    .expect("drops the index");
            }
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .and_then(|()| conn.pragma_update(None, "user_version", 1))
                .expect("marks it as version 1");
            insert(&mut conn, std::slice::from_ref(&old)).expect("inserts");
        }
        let error = read_events(dir.path()).expect_err("the report waits for the upgrade");
        assert!(error.contains("schema version 1;"), "{error}");
        write(dir.path(), &["new"]).expect("upgrades and appends");
        assert_eq!(pragma::<i64>(&path, "user_version"), 2);
        let ids: Vec<String> = read_events(dir.path())
            .expect("reads")
            .into_iter()
            .map(|e| e.request_id)
            .collect();
        assert_eq!(ids, ["old", "new"]);
        let provider_index: i64 = Connection::open(&path)
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'events_provider_at_ms'",
                    [],
                    |r| r.get(0),
                )
            })
            .expect("counts");
        assert_eq!(provider_index, 0);
    }

    #[test]
    fn a_batch_is_inserted_whole_in_order_across_statements() {
        assert_eq!(COLUMNS.split(',').count(), VALUES_PER_ROW);
        let dir = Scratch::new("insert");
        write(dir.path(), &[]).expect("creates");
        let mut conn = Connection::open(db_path(dir.path())).expect("opens");
        // Two full statements and a shorter one, each row with every column different.
        let kinds = AttemptKind::ALL;
        let events: Vec<Event> = (0..2 * ROWS_PER_INSERT + 5)
            .map(|n| {
                let mut e = event(n as i64, &format!("r{n}"), &format!("p{n}"), n as u32);
                e.dialect = format!("d{n}");
                e.method = format!("M{n}");
                e.path = format!("/x/{n}");
                e.kind = kinds[n % kinds.len()];
                e.http_status = (n % 3 != 0).then_some(200 + n as u16);
                e.outcome = [Outcome::Succeeded, Outcome::Failed, Outcome::Unknown][n % 3];
                e.category = Category::ALL[n % Category::ALL.len()];
                e.code = format!("c{n}");
                e.provider_code = (n % 2 == 0).then(|| format!("pc{n}"));
                e.latency_us = 1000 + n as u64;
                e.error = (n % 3 == 0).then(|| format!("e{n}"));
                e.operation_id = (n % 4 == 0).then(|| format!("op{n}"));
                e
            })
            .collect();
        insert(&mut conn, &events).expect("inserts");
        assert_eq!(read_events(dir.path()).expect("reads"), events);
        // An empty batch is an empty transaction.
        insert(&mut conn, &[]).expect("inserts nothing");
        assert_eq!(read_events(dir.path()).expect("reads").len(), events.len());
    }

    #[test]
    fn a_batch_that_fails_half_way_leaves_nothing_and_the_next_one_goes_in() {
        let dir = Scratch::new("fails");
        write(dir.path(), &[]).expect("creates");
        let mut conn = Connection::open(db_path(dir.path())).expect("opens");
        // Refuses one row: the batch's second statement fails after its first went in, and SQLite
        // rolls the transaction back itself, as `OR ROLLBACK` has it do on a constraint.
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON events WHEN NEW.request_id = 'bad'
             BEGIN SELECT RAISE(ROLLBACK, 'refused'); END",
        )
        .expect("creates the trigger");
        let mut events: Vec<Event> = (0..2 * ROWS_PER_INSERT + 3)
            .map(|n| event(n as i64, &format!("r{n}"), "acme", 1))
            .collect();
        for bad in [ROWS_PER_INSERT + 4, 2 * ROWS_PER_INSERT + 1] {
            events[bad].request_id = "bad".to_owned();
            let e = insert(&mut conn, &events).expect_err("the trigger refuses");
            assert!(e.to_string().contains("refused"), "{e}");
            assert!(conn.is_autocommit(), "no transaction is left open");
            assert_eq!(read_events(dir.path()).expect("reads"), []);
            events[bad].request_id = format!("r{bad}");
        }
        // The same cached statements, retried.
        insert(&mut conn, &events).expect("inserts");
        assert_eq!(read_events(dir.path()).expect("reads"), events);
    }

    #[test]
    fn prune_deletes_older_events_by_the_time_index_in_chunks() {
        let dir = Scratch::new("prune");
        write(dir.path(), &[]).expect("creates");
        let mut conn = Connection::open(db_path(dir.path())).expect("opens");
        let events: Vec<Event> = (1..=10)
            .map(|at| event(at, &format!("r{at}"), "acme", 1))
            .collect();
        insert(&mut conn, &events).expect("inserts");
        assert_eq!(prune(&mut conn, 6, 3), Ok(3));
        assert_eq!(prune(&mut conn, 6, 3), Ok(2));
        assert_eq!(prune(&mut conn, 6, 3), Ok(0));
        let left: Vec<i64> = read_events(dir.path())
            .expect("reads")
            .iter()
            .map(|e| e.at_ms)
            .collect();
        assert_eq!(left, [6, 7, 8, 9, 10]);
        // Through the index: a deletion round never scans the whole table.
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM events WHERE at_ms < 6 LIMIT 3",
                [],
                |r| r.get(3),
            )
            .expect("plans");
        assert!(plan.contains("events_at_ms"), "{plan}");
    }

    #[test]
    fn an_existing_database_is_reopened_and_appended_to() {
        let dir = Scratch::new("reopen");
        write(dir.path(), &["a", "b"]).expect("first run");
        write(dir.path(), &["c"]).expect("second run");
        let ids: Vec<String> = read_events(dir.path())
            .expect("reads")
            .into_iter()
            .map(|e| e.request_id)
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let distinct = request_ids(dir.path()).expect("reads");
        assert_eq!(distinct.len(), 3);
        assert!(distinct.contains("b"));
    }

    #[test]
    fn every_field_survives_the_round_trip() {
        let dir = Scratch::new("roundtrip");
        let mut e = event(1_700_000_000_123, "req", "acme", 3);
        e.kind = crate::AttemptKind::Poll;
        e.http_status = None;
        e.outcome = payerr::Outcome::Unknown;
        e.category = payerr::Category::OutcomeUnknown;
        e.provider_code = None;
        e.latency_us = u64::from(u32::MAX) + 7;
        e.error = Some("timed out".to_owned());
        e.operation_id = Some("op-9".to_owned());
        let log = EventLog::open(dir.path(), EventLogOptions::default()).expect("opens");
        log.record(e.clone());
        log.close().expect("closes");
        assert_eq!(read_events(dir.path()).expect("reads"), [e]);
    }

    /// Files that are not ours give an error naming the file as the event database, for the
    /// gateway (writing) and the report (reading). That they are refused untouched, and how each
    /// case is told apart, is tested in `payerr_sqlite`.
    #[test]
    fn foreign_newer_older_empty_and_corrupt_files_are_refused_in_the_event_databases_words() {
        let dir = Scratch::new("foreign");
        std::fs::create_dir_all(dir.path()).expect("creates the directory");
        let path = db_path(dir.path());
        let refusals = || {
            [
                write(dir.path(), &["a"]).expect_err("writing is refused"),
                read_events(dir.path()).expect_err("reading is refused"),
            ]
        };

        Connection::open(&path)
            .and_then(|c| c.execute_batch("CREATE TABLE songs (title TEXT)"))
            .expect("creates another application's database");
        for error in refusals() {
            assert!(error.contains("not a payerr event database"), "{error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
        }

        std::fs::write(&path, "not a database at all".repeat(50)).expect("writes garbage");
        for error in refusals() {
            assert!(error.contains("not a payerr event database"), "{error}");
        }

        std::fs::remove_file(&path).expect("removes");
        std::fs::write(&path, b"").expect("creates an empty file");
        let error = read_events(dir.path()).expect_err("refused");
        assert!(
            error.contains("the event database is empty: the gateway has not written to it yet"),
            "{error}"
        );
        Connection::open(&path)
            .and_then(|c| c.pragma_update(None, "application_id", APPLICATION_ID))
            .expect("pretends to be from an older payerr");
        let error = read_events(dir.path()).expect_err("refused");
        assert!(
            error.contains(&format!(
                "the event database has schema version 0; this payerr reads version \
                 {SCHEMA_VERSION} (starting the gateway once upgrades it)"
            )),
            "{error}"
        );

        std::fs::remove_file(&path).expect("removes");
        write(dir.path(), &["a"]).expect("writes");
        Connection::open(&path)
            .and_then(|c| c.pragma_update(None, "user_version", 99))
            .expect("pretends to be from a newer payerr");
        for error in refusals() {
            assert!(error.contains("newer than this payerr's"), "{error}");
        }
    }
}
