//! The access log, end to end: one line per answered request (pipelined, rejected, timed out,
//! across a reload), exactly; reopening on SIGUSR1 after a logrotate-style move; and a log
//! that nobody reads never holding up a response, its lost lines counted.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::metrics_helpers::scrape;
use common::Server;

/// Longest wait for lines to reach the file: many times `access_log_flush` below.
const LINES_WAIT: Duration = Duration::from_secs(10);

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Wait until `path` holds at least `n` lines; returns them.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + LINES_WAIT;
    loop {
        let found = lines(path);
        if found.len() >= n || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const GET: &[u8] = b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\"ester\r\n\r\n";

#[test]
fn every_answered_request_gets_exactly_one_line_across_pipelining_errors_and_a_reload() {
    let combined = "access_log = \"$DIR/access.log\"\naccess_log_flush = \"20ms\"\n\
                    header_timeout = \"300ms\"\nmax_body = 10\n";
    let mut server = Server::start(combined);
    let log = server.dir().join("access.log");
    let mut answered = 0;

    let mut c = server.connect();
    for _ in 0..20 {
        c.send(GET);
        assert_eq!(c.read_response().status, 200);
        answered += 1;
    }
    c.send(GET.repeat(16));
    for _ in 0..16 {
        assert_eq!(c.read_response().status, 200);
        answered += 1;
    }
    // 400 from a check of the head (no Host), 400 from the parser, 413, and 408.
    for (request, status) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], 400),
        (b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
            413,
        ),
        (b"GET / HT", 408),
    ] {
        let mut c = server.connect();
        c.send(request);
        assert_eq!(c.read_response().status, status);
        answered += 1;
    }
    let before = wait_lines(&log, answered);
    assert_eq!(before.len(), answered, "{before:#?}");
    assert!(
        before[0].starts_with("127.0.0.1 - - [")
            && before[0].ends_with("] \"GET /x?y=1 HTTP/1.1\" 200 21 \"-\" \"t\\x22ester\""),
        "{}",
        before[0]
    );
    let tail = &before[before.len() - 4..];
    assert!(
        tail[0].ends_with("\"GET / HTTP/1.1\" 400 12 \"-\" \"-\""),
        "{}",
        tail[0]
    );
    assert!(
        tail[1].ends_with("\"GET /\\x01 HTTP/1.1\" 400 12 \"-\" \"-\""),
        "{}",
        tail[1]
    );
    assert!(
        tail[2].ends_with("\"POST / HTTP/1.1\" 413 18 \"-\" \"-\""),
        "{}",
        tail[2]
    );
    assert!(tail[3].ends_with("\"-\" 408 16 \"-\" \"-\""), "{}", tail[3]);

    // The same file, now in JSON; the kept-alive connection moves to the new config too.
    server.reload_with(&format!("{combined}access_log_format = \"json\"\n"));
    server.wait_stderr("reloaded", 1);
    c.send(GET.repeat(4));
    for _ in 0..4 {
        assert_eq!(c.read_response().status, 200);
        answered += 1;
    }
    drop(c);
    let after = wait_lines(&log, answered);
    assert_eq!(after.len(), answered);
    let v: serde_json::Value = serde_json::from_str(after.last().unwrap()).unwrap();
    assert_eq!(v["remote_addr"], "127.0.0.1");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["target"], "/x?y=1");
    assert_eq!(v["version"], "HTTP/1.1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["body_bytes_sent"], 21);
    assert_eq!(v["worker"], 0);
    assert_eq!(v["user_agent"], "t\"ester");
    assert!(v["duration_us"].as_u64().is_some() && v["time"].as_str().unwrap().ends_with('Z'));

    // A clean stop writes what is left, and nothing twice.
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    assert_eq!(lines(&log).len(), answered);
}

#[test]
fn sigusr1_reopens_the_log_after_it_was_moved() {
    let mut server =
        Server::start("access_log = \"$DIR/access.log\"\naccess_log_flush = \"20ms\"\n");
    let (log, moved) = (
        server.dir().join("access.log"),
        server.dir().join("access.log.1"),
    );
    common::roundtrip(server.addr(), GET);
    assert_eq!(wait_lines(&log, 1).len(), 1);
    std::fs::rename(&log, &moved).unwrap();
    server.signal(libc::SIGUSR1);
    // The reopen creates the file at once, before any new line.
    let deadline = Instant::now() + LINES_WAIT;
    while !log.exists() {
        assert!(Instant::now() < deadline, "SIGUSR1 did not reopen {log:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    common::roundtrip(server.addr(), GET);
    assert_eq!(wait_lines(&log, 1).len(), 1);
    assert_eq!(lines(&moved).len(), 1);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    assert_eq!((lines(&log).len(), lines(&moved).len()), (1, 1));
}

#[test]
fn a_log_nobody_reads_never_delays_a_response_and_its_lost_lines_are_counted() {
    let dir = common::TempDir::new();
    let fifo = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path we own for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // Nobody opens the FIFO for reading: the log thread blocks opening it, forever.
    let config = format!(
        "access_log = \"{}\"\naccess_log_buffer = 1024\naccess_log_flush = \"10ms\"\n",
        fifo.display()
    );
    let mut server = Server::builder(&config)
        .metrics_listen("127.0.0.1:0")
        .start();
    let mut c = server.connect();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..200 {
        let t = Instant::now();
        c.send(GET.repeat(16));
        for _ in 0..16 {
            assert_eq!(c.read_response().status, 200);
        }
        slowest = slowest.max(t.elapsed());
    }
    // 3200 lines are far more than the log thread's queue holds (32 batches of ~1 KiB).
    assert!(
        slowest < Duration::from_secs(1),
        "a batch took {slowest:?} with the log stalled"
    );
    let dropped = scrape(server.metrics()).sum("cerberus_access_log_dropped_total");
    assert!(
        dropped > 1000.0,
        "dropped {dropped} of 3200 lines; took {:?}",
        started.elapsed()
    );
    assert!(dropped <= 3200.0);
    // Shutdown waits a bounded time for the stalled log, then exits.
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn logrotate_signals_the_main_pid_and_the_unit_may_write_its_log_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rotate = std::fs::read_to_string(root.join("deploy/logrotate/cerberus")).unwrap();
    assert!(
        rotate.contains("/var/log/cerberus/access.log {"),
        "{rotate}"
    );
    assert!(rotate.contains("systemctl show --property MainPID --value cerberus.service"));
    assert!(rotate.contains("kill -USR1 \"$pid\""), "{rotate}");
    let unit = std::fs::read_to_string(root.join("deploy/systemd/cerberus.service")).unwrap();
    assert!(
        unit.lines().any(|l| l == "LogsDirectory=cerberus"),
        "{unit}"
    );
    assert!(unit.lines().any(|l| l == "ProtectSystem=strict"));
}
