//! payerr's event log: gateway attempts in SQLite (batched, off the request path) and the report read from it.
