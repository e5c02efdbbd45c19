//! The smuggling and framing probe table: hostile and borderline requests against
//! the real binary, each with the statuses it must get and whether the connection must close.
//!
//! The table lives in `tests/probes/`: `request.rs` (request line, versions, methods, targets,
//! Host), `framing.rs` (Content-Length, Transfer-Encoding), `chunked.rs` (chunks, extensions,
//! trailers) and `lines.rs` (line endings, field syntax, limits, Expect, pipelining);
//! `probe.rs` says how a probe is run and judged. The expected answers are what RFC 9112 and
//! RFC 9110 require (where they allow a choice, the probe accepts each choice), not what the
//! server does today.
//!
//! Every probe must pass: a newly found hole gets its probe added with the fix.

mod common;

#[path = "probes/chunked.rs"]
mod chunked;
#[path = "probes/framing.rs"]
mod framing;
#[path = "probes/lines.rs"]
mod lines;
#[path = "probes/probe.rs"]
mod probe;
#[path = "probes/request.rs"]
mod request;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::Server;
use probe::Probe;

/// Probes run at once: the server answers each at once, so this only bounds the wait of the
/// few that fail (each waits up to five seconds).
const PARALLEL: usize = 8;

/// Every probe of the table.
fn table() -> Vec<Probe> {
    [
        request::PROBES,
        framing::PROBES,
        chunked::PROBES,
        lines::PROBES,
    ]
    .concat()
}

/// Run these probes against one server; the name and error of each that fails.
fn run_all(probes: &[Probe]) -> Vec<(&'static str, String)> {
    let server = Server::start(probe::CONFIG);
    let addr = server.addr();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                while let Some(p) = probes.get(next.fetch_add(1, Ordering::Relaxed)) {
                    // A malformed response makes the client helpers panic: a failure too.
                    let result = std::panic::catch_unwind(|| p.run(addr))
                        .unwrap_or_else(|_| Err("the client panicked (see above)".into()));
                    if let Err(e) = result {
                        failures.lock().unwrap().push((p.name, e));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    failures
}

#[test]
fn table_has_at_least_120_probes_with_unique_names() {
    let probes = table();
    let mut names: Vec<_> = probes.iter().map(|p| p.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), probes.len(), "duplicate probe names");
    assert!(probes.len() >= 120, "only {} probes", probes.len());
}

#[test]
fn probes_get_the_answers_the_rfcs_require() {
    let probes = table();
    let failures = run_all(&probes);
    let report: Vec<String> = failures.iter().map(|(n, e)| format!("{n}: {e}")).collect();
    assert!(report.is_empty(), "probes failed:\n{}", report.join("\n"));
}

/// The judge itself: probes whose expectations are wrong must each fail, one per way a server
/// can break the rule (wrong status, a close where the connection must stay open, an open
/// connection where it must close, a body answered as a request).
#[test]
fn probes_with_wrong_expectations_fail() {
    use probe::{close, open};
    let wrong = [
        open("wrong_status", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
        open("wrong_open", b"GET / HTTP/1.1\r\n\r\n", "400"),
        close("wrong_close", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
        open(
            "wrong_framing",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\
              GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            "200",
        ),
    ];
    let failures = run_all(&wrong);
    let failed: Vec<&str> = failures.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        failed,
        ["wrong_close", "wrong_framing", "wrong_open", "wrong_status"],
        "{failures:?}"
    );
    let smuggled = &failures[1].1;
    assert!(smuggled.contains("the canary got 202"), "{smuggled}");
}
