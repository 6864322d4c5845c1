//! Envelope variants, HTTP-only decisions, Retry-After, languages and auto-detection.
