//! End-to-end tests of the `payerr` binary: the commands through a real process, and `payerr serve`
//! through real sockets, checked against its own OpenAPI document.

mod commands;
mod frontdoor;
mod gateway;
mod http;
mod process;
mod report;
mod schema;
mod serve;
mod simulate;
mod walkthrough;
