//! Reading events back, read-only: for tests and tools (the gateway's tests correlate attempts with
//! the database by `request_id`).

use std::collections::HashSet;
use std::path::Path;

use rusqlite::Connection;

use crate::event::Event;
use crate::schema;

/// Every event in the database of `data_dir`, oldest first. Loads them all into memory.
pub fn read_events(data_dir: &Path) -> Result<Vec<Event>, String> {
    let sql = format!("SELECT {} FROM events ORDER BY id", schema::COLUMNS);
    read(data_dir, |conn| {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], schema::read_row)?;
        rows.collect()
    })
}

/// The distinct request ids in the database of `data_dir`.
pub fn request_ids(data_dir: &Path) -> Result<HashSet<String>, String> {
    read(data_dir, |conn| {
        let mut stmt = conn.prepare("SELECT DISTINCT request_id FROM events")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    })
}

fn read<T>(
    data_dir: &Path,
    query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, String> {
    let conn = schema::open_existing(data_dir)?;
    query(&conn).map_err(|e| format!("{}: {e}", schema::db_path(data_dir).display()))
}
