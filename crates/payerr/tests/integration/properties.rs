//! Property tests: no input makes normalization panic.
