//! Cerberus: a small, strict, fast HTTP/1.1 server for Linux.
//!
//! # Layout
//!
//! The public API is what a library user needs: [`config`], [`handler`], [`http`], [`json`],
//! [`shape`], [`control`], [`Server`] and [`take_inherited_listeners`]. Everything else is the server's
//! own machinery, private to the crate.
//!
//! - [`config`]: the TOML configuration, its defaults and validation, and CLI overrides.
//! - [`http`]: the wire format, pure code with no I/O and no allocation. The parsed head
//!   (`head`), the zero-copy incremental request parser (`parser`), the field-line grammar
//!   shared by headers and trailers (`field`), the chunked-body decoder (`chunked`), the error
//!   kinds and their status codes (`error`), the byte scanners (`scan`); also response
//!   writing and the `Date` cache.
//! - [`json`]: the JSON body validator (a plain and a general walk) and its scanners; pure
//!   code, like `http`.
//! - [`handler`]: the [`Handler`](handler::Handler) trait, the built-in handlers and routing;
//!   responses that complete later ([`Later`](handler::Later)); `handler::shape`, the `shape`
//!   handler of the load-test target.
//! - [`shape`]: what a `shape` route's client may ask for (the grammar, its distributions and
//!   draws) and the route's counters of what was applied; pure code.
//! - [`control`]: `cerberus reload`: SIGHUP to a running server, then wait (by its metrics)
//!   until every worker serves the new config, or it was refused.
//! - `supervisor`: the main thread and [`Server`]. Reacts to signals (SIGHUP reload, which it
//!   reports done only once every worker applied it; SIGTERM/SIGINT drain; SIGUSR1) and to
//!   worker reports. It never takes file descriptors from the environment: `main` does, with
//!   [`take_inherited_listeners`], and hands them to [`Server::with_listeners`].
//!   - `supervisor::listeners`: the `SO_REUSEPORT` sockets, kept across reloads.
//!   - `supervisor::generation`: a generation of workers, started and drained together.
//! - `worker`: one pinned thread with its own `mio` loop: accepting, events, timeouts.
//!   - `worker::ctx`: what its connections share (the newest config, buffers, counters).
//!   - `worker::conn`: one connection, owning its state (its config, parser state, output,
//!     timer and registration) and returning what the worker should apply: `reading`
//!     (pipelining, backpressure), `framing` (one request's head and body), `writing`
//!     (unsent output, lingering), `pending` (responses that complete later, in order),
//!     `timeouts` (what the timer waits for; minimum rates).
//!   - `worker::balance`: the generation's team: connections handed to the least loaded
//!     worker at accept, and busy ones moved between requests.
//!   - `worker::dispatch`: answering one complete request (checks, JSON, routing, counting);
//!     `worker::access`: its access-log line.
//!   - `worker::timer`: the timing wheel, with each connection's timer by slab key.
//!   - `worker::alarm`: instants at which connections asked to be woken (a response due), on a
//!     `timerfd`, for sub-millisecond delays.
//! - `stats`: the counters each worker writes through its one `StatsWriter`, and `Observed`,
//!   where the supervisor and the metrics thread meet.
//! - `metrics`: the metrics thread. `/metrics` (Prometheus text, summed from every worker's
//!   counters at scrape time), `/healthz` and `/readyz` on a blocking listener of its own.
//! - `access_log`: one line per answered request (nginx `combined` or JSON), formatted into
//!   each worker's buffer and written in batches by a log thread (`access_log::sink`), which
//!   SIGUSR1 makes reopen the file; lines it cannot take in time are dropped and counted.
//! - `log`: `Throttle`, which keeps an error that repeats (an accept failing while out of file
//!   descriptors) to one log line a second, with a count of the lines it held back.
//! - `os`: the machine boundary and the crate's only `unsafe` code (`deny(unsafe_code)`
//!   everywhere else). `os::sys` holds the system calls (inherited file descriptors,
//!   CLOCK_MONOTONIC, TCP options, kill); `os::systemd` the notify protocol, the watchdog and
//!   socket activation; `os::timerfd` the alarms' timer and the timer slack; `os::simd` the
//!   scanners' SSE2 and SWAR steps.
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

// `unsafe` is allowed in `os` alone (system calls, the scanners' SSE2 steps), and every block
// there says why it is sound.
#![deny(
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

#[macro_use]
mod macros;

pub mod config;
pub mod control;
pub mod handler;
pub mod http;
pub mod json;
pub mod shape;
pub mod tls;

mod access_log;
mod log;
mod metrics;
#[allow(unsafe_code)]
mod os;
mod stats;
mod supervisor;
mod worker;

pub use os::systemd::{take_inherited_listeners, Inherited};
pub use supervisor::Server;

/// The connection state machine over a scripted socket, for the fuzz target and property
/// tests; not part of the API.
#[doc(hidden)]
pub use worker::fuzz as fuzzing;
