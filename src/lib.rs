//! Cerberus: a small, strict, fast HTTP/1.1 server for Linux.
//!
//! # Layout
//!
//! - [`http`]: the wire format. A zero-copy incremental request parser, a chunked-body decoder,
//!   and the error kinds that map to status codes. Pure code: no I/O, no allocation.
//! - [`metrics`]: the metrics thread. `/metrics` (Prometheus text, summed from every worker's
//!   [`stats`] at scrape time), `/healthz` and `/readyz` on a blocking listener of its own.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod config;
pub mod conn;
pub mod handler;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod stats;
pub mod supervisor;
pub mod timer;
pub mod worker;

pub use supervisor::Server;
