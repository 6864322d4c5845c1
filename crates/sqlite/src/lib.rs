//! payerr's SQLite files, opened one way: the event log's (`events.sqlite3`) and the front door's
//! (`frontdoor.sqlite`) are each described by a [`Schema`], which opens a file for writing or
//! reading, refuses a file that is not its own, and migrates the schema.
//!
//! A file is marked as ours with `PRAGMA application_id` and versioned with `PRAGMA user_version`,
//! so a foreign SQLite file (another application's, or the other payerr database) or a newer
//! payerr's is refused with an error that names it instead of being written into or misread.
//!
//! ```no_run
//! use payerr_sqlite::Schema;
//!
//! const NOTES: Schema = Schema {
//!     name: "notes database",
//!     application_id: 0x5059_4e54,
//!     migrations: &["CREATE TABLE notes (text TEXT NOT NULL)"],
//! };
//!
//! let conn = NOTES.open_for_writing("notes.sqlite".as_ref())?;
//! conn.execute("INSERT INTO notes (text) VALUES ('hello')", [])
//!     .map_err(|e| NOTES.describe("notes.sqlite".as_ref(), &e))?;
//! # Ok::<(), String>(())
//! ```

#![deny(missing_docs)]

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// How long a statement waits for a lock held by another connection (a `sqlite3` shell, a
/// checkpoint) before it fails. Set on every connection a [`Schema`] opens.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One kind of payerr database file: what it is called in messages, its mark and its migrations.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    /// What the file is, in messages: "event database", "front door database".
    pub name: &'static str,
    /// `PRAGMA application_id` of the files of this schema.
    pub application_id: i32,
    /// `migrations[n]` takes a file from version `n` to `n + 1`. Append only.
    pub migrations: &'static [&'static str],
}

impl Schema {
    /// The schema version this build writes and reads (`PRAGMA user_version`): the number of
    /// migrations.
    pub const fn version(&self) -> i64 {
        self.migrations.len() as i64
    }

    /// Opens (creating if needed) the file for writing: busy timeout, WAL, `synchronous=NORMAL`,
    /// schema migrated to [`version`](Self::version). A file that is not of this schema, or is of a
    /// newer version, is refused untouched.
    pub fn open_for_writing(&self, path: &Path) -> Result<Connection, String> {
        let fail = |e: rusqlite::Error| self.describe(path, &e);
        let mut conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // Before changing anything (the journal mode is persistent): is the file ours, or empty?
        self.check(&conn, path, false)?;
        // WAL: readers never block the writer; NORMAL: a commit is a write to the WAL without
        // fsync, which survives a killed process (not a power cut).
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!(
                "{}: cannot use write-ahead logging (journal mode {mode})",
                path.display()
            ));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        self.migrate(&mut conn).map_err(fail)?;
        Ok(conn)
    }

    /// Opens an existing file read-only (a missing one is an error; nothing is created or
    /// written), as a reader does while another process may be writing. Besides what
    /// [`open_for_writing`](Self::open_for_writing) refuses, an older or empty file is refused,
    /// since reading cannot migrate it.
    pub fn open_for_reading(&self, path: &Path) -> Result<Connection, String> {
        let fail = |e: rusqlite::Error| self.describe(path, &e);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        self.check(&conn, path, true)?;
        Ok(conn)
    }

    /// Refuses a file this build cannot use: another application's, a newer payerr's, or (when
    /// `reading`, which cannot migrate) an older or empty one. An empty file is fine for writing:
    /// the migrations create the schema. Errors name `path`.
    pub fn check(&self, conn: &Connection, path: &Path, reading: bool) -> Result<(), String> {
        // One read transaction, so that the three values come from one state of the file: read one
        // by one, another process's migration committed in between looks like a foreign file.
        let snapshot = || {
            let tx = conn.unchecked_transaction()?;
            let found = identity(&tx)?;
            tx.commit()?;
            Ok(found)
        };
        let (app, version, objects) = snapshot().map_err(|e| self.describe(path, &e))?;
        let (name, ours, current) = (self.name, self.application_id, self.version());
        let problem = if app == ours && version > current {
            format!(
                "the {name} has schema version {version}, newer than this payerr's \
                 ({current}): use a newer payerr"
            )
        } else if app == ours && reading && version < current {
            format!(
                "the {name} has schema version {version}; this payerr reads version \
                 {current} (starting the gateway once upgrades it)"
            )
        } else if app == ours || (app == 0 && version == 0 && objects == 0 && !reading) {
            return Ok(());
        } else if app == 0 && version == 0 && objects == 0 {
            format!("the {name} is empty: the gateway has not written to it yet")
        } else {
            format!("not a payerr {name} (another application's SQLite file)")
        };
        Err(format!("{}: {problem}", path.display()))
    }

    /// A SQLite error as a sentence that names the file; a file that is not a database at all is
    /// said to be none of ours.
    pub fn describe(&self, path: &Path, e: &rusqlite::Error) -> String {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            format!("{}: not a payerr {} ({e})", path.display(), self.name)
        } else {
            format!("{}: {e}", path.display())
        }
    }

    /// Brings the schema to [`version`](Self::version) in one transaction. The version is read
    /// again under the write lock, so two processes opening a new file at once do not both create
    /// the schema.
    fn migrate(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (_, version, _) = identity(&tx)?;
        let from = usize::try_from(version).unwrap_or(self.migrations.len());
        if from >= self.migrations.len() {
            return Ok(());
        }
        for step in &self.migrations[from..] {
            tx.execute_batch(step)?;
        }
        tx.pragma_update(None, "application_id", self.application_id)?;
        tx.pragma_update(None, "user_version", self.version())?;
        tx.commit()
    }
}

/// `application_id`, `user_version` and the number of schema objects.
fn identity(conn: &Connection) -> rusqlite::Result<(i32, i64, i64)> {
    let app = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let objects = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    Ok((app, version, objects))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Plain `CREATE TABLE`s: a step run twice fails, so these tests see every step run once.
    const V1: Schema = Schema {
        name: "test database",
        application_id: 0x5059_5453,
        migrations: &["CREATE TABLE a (x INTEGER)"],
    };
    const V2: Schema = Schema {
        migrations: &[
            "CREATE TABLE a (x INTEGER)",
            "CREATE TABLE b (y TEXT); CREATE INDEX b_y ON b (y);",
        ],
        ..V1
    };

    /// A fresh directory for one test, removed on drop; the test's file is `test.sqlite` in it.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("payerr-sqlite-{}-{n}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("creates the directory");
            Scratch(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join("test.sqlite")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A scratch directory with a version 1 file in it, and the file.
    fn version_1_file(name: &str) -> (Scratch, PathBuf) {
        let dir = Scratch::new(name);
        let path = dir.file();
        V1.open_for_writing(&path).expect("creates version 1");
        (dir, path)
    }

    /// A plain connection, as a `sqlite3` shell or another program would have.
    fn plain(path: &Path) -> Connection {
        Connection::open(path).expect("opens")
    }

    fn pragma<T: rusqlite::types::FromSql>(conn: &Connection, name: &str) -> T {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .expect("pragma reads")
    }

    /// What opening `path` for writing and for reading say, when both fail.
    fn refusals(schema: Schema, path: &Path) -> [String; 2] {
        [
            schema.open_for_writing(path).map(drop),
            schema.open_for_reading(path).map(drop),
        ]
        .map(|opened| opened.expect_err("refused"))
    }

    fn names(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master ORDER BY name")
            .expect("prepares");
        let names = stmt.query_map([], |r| r.get(0)).expect("lists");
        names.collect::<Result<_, _>>().expect("names")
    }

    #[test]
    fn a_new_file_is_marked_migrated_and_in_wal_mode() {
        let dir = Scratch::new("new");
        let path = dir.file();
        let conn = V2.open_for_writing(&path).expect("creates");
        assert_eq!(pragma::<i64>(&conn, "busy_timeout"), 5000);
        // 1 is NORMAL; the setting is the connection's own, so it is read on the one opened.
        assert_eq!(pragma::<i64>(&conn, "synchronous"), 1);
        drop(conn);
        let conn = plain(&path);
        assert_eq!(pragma::<i32>(&conn, "application_id"), V2.application_id);
        assert_eq!(pragma::<i64>(&conn, "user_version"), 2);
        assert_eq!(pragma::<String>(&conn, "journal_mode"), "wal");
        assert_eq!(names(&conn), ["a", "b", "b_y"]);
    }

    #[test]
    fn an_older_file_is_migrated_from_its_version_and_a_current_one_left_as_it_is() {
        let (_dir, path) = version_1_file("migrate");
        plain(&path)
            .execute("INSERT INTO a (x) VALUES (7)", [])
            .expect("writes a row");
        // Only the second step runs: the first one again would fail (the table exists).
        V2.open_for_writing(&path).expect("migrates to version 2");
        V2.open_for_writing(&path)
            .expect("opens version 2 as it is");
        let conn = plain(&path);
        assert_eq!(pragma::<i64>(&conn, "user_version"), 2);
        assert_eq!(names(&conn), ["a", "b", "b_y"]);
        let x: i64 = conn
            .query_row("SELECT x FROM a", [], |r| r.get(0))
            .expect("the row is kept");
        assert_eq!(x, 7);
    }

    /// Two connections that both found the new file empty migrate it once: the second reads the
    /// version again under the write lock and finds nothing to do.
    #[test]
    fn a_migration_reads_the_version_again_and_runs_each_step_once() {
        let dir = Scratch::new("twice");
        let path = dir.file();
        let mut first = plain(&path);
        let mut second = plain(&path);
        for conn in [&first, &second] {
            assert_eq!(V2.check(conn, &path, false), Ok(()));
        }
        V2.migrate(&mut first).expect("creates the schema");
        V2.migrate(&mut second).expect("finds it created");
        assert_eq!(pragma::<i64>(&second, "user_version"), 2);
        assert_eq!(names(&second), ["a", "b", "b_y"]);
    }

    /// Another application's file (tables, or only its own mark) and a file that is no database
    /// at all are refused for writing and for reading, with an error naming the file, and are left
    /// exactly as they were.
    /// Several processes creating one file at once is not something payerr does (one gateway writes
    /// its files), and SQLite may then answer "database is locked" to one of them; what must never
    /// happen is a half-migrated file read as another application's.
    #[test]
    fn openers_racing_on_a_new_file_never_see_it_as_foreign() {
        for round in 0..20 {
            let scratch = Scratch::new(&format!("race-{round}"));
            let file = scratch.file();
            let openers: Vec<_> = (0..8)
                .map(|_| {
                    let file = file.clone();
                    std::thread::spawn(move || V2.open_for_writing(&file).map(|_| ()))
                })
                .collect();
            for opener in openers {
                if let Err(e) = opener.join().unwrap() {
                    assert!(e.ends_with("database is locked"), "round {round}: {e}");
                }
            }
        }
    }

    #[test]
    fn files_that_are_not_ours_are_refused_untouched() {
        let dir = Scratch::new("foreign");
        let path = dir.file();
        let foreign = format!(
            "{}: not a payerr test database (another application's SQLite file)",
            path.display()
        );
        plain(&path)
            .execute_batch("CREATE TABLE songs (title TEXT)")
            .expect("creates another application's database");
        assert_eq!(refusals(V1, &path), [foreign.clone(), foreign.clone()]);
        let conn = plain(&path);
        assert_eq!(pragma::<String>(&conn, "journal_mode"), "delete");
        assert_eq!(names(&conn), ["songs"]);
        drop(conn);

        std::fs::remove_file(&path).expect("removes");
        plain(&path)
            .pragma_update(None, "application_id", 7)
            .expect("marks the file as another application's");
        assert_eq!(refusals(V1, &path), [foreign.clone(), foreign]);
        assert_eq!(pragma::<i32>(&plain(&path), "application_id"), 7);

        std::fs::remove_file(&path).expect("removes");
        let garbage =
            b"this is not a database, just some text long enough to have a header.....".repeat(20);
        std::fs::write(&path, &garbage).expect("writes garbage");
        let prefix = format!("{}: not a payerr test database (", path.display());
        for error in refusals(V1, &path) {
            assert!(error.starts_with(&prefix), "{error}");
        }
        assert_eq!(std::fs::read(&path).expect("reads"), garbage);
    }

    #[test]
    fn a_newer_file_is_refused_for_writing_and_reading() {
        let (_dir, path) = version_1_file("newer");
        plain(&path)
            .pragma_update(None, "user_version", 99)
            .expect("pretends to be from a newer payerr");
        let newer = format!(
            "{}: the test database has schema version 99, newer than this payerr's (1): use a \
             newer payerr",
            path.display()
        );
        assert_eq!(refusals(V1, &path), [newer.clone(), newer]);
        assert_eq!(pragma::<i64>(&plain(&path), "user_version"), 99);
    }

    /// Reading cannot migrate: an older file and an empty one are refused, and a file is never
    /// created or changed by reading.
    #[test]
    fn reading_refuses_an_older_an_empty_or_a_missing_file_and_writes_nothing() {
        let dir = Scratch::new("reading");
        let path = dir.file();
        let error = V1.open_for_reading(&path).expect_err("missing");
        assert!(error.starts_with(&path.display().to_string()), "{error}");
        assert!(!path.exists(), "reading creates nothing");

        std::fs::write(&path, b"").expect("creates an empty file");
        assert_eq!(
            V1.open_for_reading(&path).err(),
            Some(format!(
                "{}: the test database is empty: the gateway has not written to it yet",
                path.display()
            ))
        );

        V1.open_for_writing(&path).expect("creates version 1");
        assert_eq!(
            V2.open_for_reading(&path).err(),
            Some(format!(
                "{}: the test database has schema version 1; this payerr reads version 2 \
                 (starting the gateway once upgrades it)",
                path.display()
            ))
        );
        assert_eq!(pragma::<i64>(&plain(&path), "user_version"), 1);

        let conn = V1
            .open_for_reading(&path)
            .expect("reads the current version");
        assert_eq!(pragma::<i64>(&conn, "busy_timeout"), 5000);
        assert!(conn.execute("INSERT INTO a (x) VALUES (1)", []).is_err());
    }

    #[test]
    fn check_takes_an_empty_connection_for_writing_only() {
        let conn = Connection::open_in_memory().expect("opens");
        let path = Path::new("memory");
        assert_eq!(V1.check(&conn, path, false), Ok(()));
        assert!(V1.check(&conn, path, true).is_err());
        conn.execute_batch("CREATE TABLE a (x)").expect("creates");
        assert!(V1.check(&conn, path, false).is_err());
    }

    #[test]
    fn describe_names_the_file() {
        let path = Path::new("/data/test.sqlite");
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        let busy = failure(rusqlite::ffi::SQLITE_BUSY);
        let garbage = failure(rusqlite::ffi::SQLITE_NOTADB);
        assert_eq!(
            V1.describe(path, &busy),
            format!("/data/test.sqlite: {busy}")
        );
        assert_eq!(
            V1.describe(path, &garbage),
            format!("/data/test.sqlite: not a payerr test database ({garbage})")
        );
    }
}
