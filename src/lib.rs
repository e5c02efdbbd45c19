//! Cerberus: a small, strict, fast HTTP/1.1 server for Linux.
//!
//! # Layout
//!
//! - [`config`]: the TOML configuration, its defaults and validation, and CLI overrides.
//! - [`supervisor`]: the main thread. Binds listeners, starts workers, reacts to signals
//!   (SIGHUP reload, SIGTERM/SIGINT drain) and to worker reports.
//! - [`generation`]: listeners kept across reloads, and generations of workers.
//! - [`listener`]: `SO_REUSEPORT` listening sockets built with `socket2`.
//! - [`worker`]: one pinned thread with its own `mio` loop, connections and buffers.
//! - [`conn`]: one connection: reading, pipelining, backpressure, timers' targets.
//! - [`dispatch`]: answering one complete request (checks, JSON, routing, counting).
//! - [`timer`]: the per-worker timing wheel behind every timeout.
//! - [`http`]: the wire format. A zero-copy incremental request parser, a chunked-body decoder,
//!   and the error kinds that map to status codes. Pure code: no I/O, no allocation. Also
//!   the JSON body validator (`http::json`), response writing and the per-worker `Date` cache.
//! - [`handler`]: the [`Handler`](handler::Handler) trait, the built-in handlers and routing.
//! - [`stats`]: the counters each worker writes (single-writer atomics).
//! - [`metrics`]: the metrics thread. `/metrics` (Prometheus text, summed from every worker's
//!   [`stats`] at scrape time), `/healthz` and `/readyz` on a blocking listener of its own.
//! - [`systemd`]: readiness notifications, the watchdog, and socket activation.
//! - [`sys`]: `unsafe` system calls (inherited file descriptors, CLOCK_MONOTONIC,
//!   TCP_DEFER_ACCEPT). The only other `unsafe` code is the SSE2 scanning in `http::scan`,
//!   used by the parser and the JSON validator.

//!
//! # Parsing a request
//!
//! ```
//! use cerberus::http::{BodyKind, RequestParser, Status};
//!
//! let mut parser = RequestParser::new();
//! let bytes = b"POST /orders?id=7 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\n{}";
//! // Incomplete data is not an error: it asks for more.
//! assert!(matches!(parser.parse(&bytes[..20]), Status::Partial));
//! let Status::Complete(head, consumed) = parser.parse(bytes) else { panic!() };
//! assert_eq!((head.method(), head.path(), head.query()), ("POST", "/orders", Some("id=7")));
//! assert_eq!(head.body(), BodyKind::Length(2));
//! assert_eq!(&bytes[consumed..], b"{}");
//! ```
//!
//! # Serving with your own handler
//!
//! ```no_run
//! use std::sync::Arc;
//! use cerberus::handler::{Handler, Request, Responder, Route};
//!
//! struct Hello;
//! impl Handler for Hello {
//!     fn handle(&self, _req: &Request<'_>, res: &mut Responder<'_>) {
//!         res.send(200, &[("Content-Type", b"text/plain")], b"hello\n");
//!     }
//! }
//!
//! let config = cerberus::config::Config::default();
//! cerberus::Server::new(config)?
//!     .route(Route::exact(Some("GET"), "/hello", Arc::new(Hello)))
//!     .run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod config;
pub mod conn;
pub mod dispatch;
pub mod generation;
pub mod handler;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod stats;
pub mod supervisor;
pub mod sys;
pub mod systemd;
pub mod timer;
pub mod worker;

pub use supervisor::Server;
