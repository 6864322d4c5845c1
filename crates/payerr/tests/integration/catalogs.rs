//! Catalog loading, user overrides and lint.
