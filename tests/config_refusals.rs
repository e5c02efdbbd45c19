//! Configurations that must be refused before they can misbehave: a body on a status that
//! forbids one, a duration that would overflow a deadline, a `body_file` that is a FIFO (a
//! read would block), a route that can never match. Each must fail `--check-config`
//! with exit 2 and a message naming the key or route, and a SIGHUP to such a file must be
//! refused while the old configuration keeps serving.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{roundtrip, run_bin, Server, TempDir};

/// Run `--check-config` on this file text (`$DIR` is the file's directory); the exit code and
/// stderr.
fn check_config(dir: &TempDir, text: &str) -> (Option<i32>, String) {
    let text = text.replace("$DIR", &dir.path().display().to_string());
    let path = dir.write("check.toml", text.as_bytes());
    let (status, _, stderr) = run_bin(&["--check-config", "--config", path.to_str().unwrap()]);
    (status.code(), stderr)
}

/// Assert that `--check-config` refuses `text` with exit 2 and a message containing `needle`.
fn refused(text: &str, needle: &str) {
    let dir = TempDir::new();
    mkfifo(&dir.path().join("fifo"));
    let (code, stderr) = check_config(&dir, text);
    assert_eq!(code, Some(2), "{text:?} was not refused; stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "{text:?}: no {needle:?} in: {stderr}"
    );
}

/// Make a FIFO at `path` with coreutils' `mkfifo`.
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Each refused configuration, and what the refusal must say: out-of-range durations, bodies
/// on 204/205/304, routes an earlier one always shadows, a FIFO `body_file`, a ticket key
/// lifetime past rustls's own rotation or not in whole seconds.
const BAD: [(&str, &str); 10] = [
    (
        "drain_timeout = \"18446744073709551615s\"",
        "drain_timeout = 18446744073709551615s is out of range: it must be between 10ms and 24h",
    ),
    (
        "header_timeout = \"2days\"",
        "header_timeout = 172800s is out of range",
    ),
    (
        "[default_response]\nstatus = 204\nbody = \"oops\"",
        "default_response: status 204 must not have a body, but body is set",
    ),
    (
        "[[route]]\npath = \"/a\"\nstatus = 304\nbody = \"oops\"",
        "route #1 (path = \"/a\"): status 304 must not have a body",
    ),
    (
        "[[route]]\nprefix = \"/r\"\nstatus = 205\nbody_file = \"$DIR/fifo\"",
        "route #1 (prefix = \"/r\"): status 205 must not have a body, but body_file is set",
    ),
    (
        "[[route]]\npath = \"/a\"\nbody = \"1\"\n[[route]]\npath = \"/b\"\n\
         [[route]]\npath = \"/a\"\nbody = \"2\"",
        "route #3 (path = \"/a\") can never match: route #1 (path = \"/a\") comes first",
    ),
    (
        "[[route]]\nmethod = \"POST\"\nprefix = \"/x\"\n[[route]]\nmethod = \"POST\"\nprefix = \"/x\"",
        "route #2 (POST prefix = \"/x\") can never match: route #1 (POST prefix = \"/x\")",
    ),
    (
        "[default_response]\nbody_file = \"$DIR/fifo\"",
        "/fifo: a FIFO, not a regular file",
    ),
    (
        "[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
         ticket_key_lifetime = \"7h\"",
        "tls.ticket_key_lifetime = 25200s is out of range: it must be whole seconds between 1s and 6h",
    ),
    (
        "[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
         ticket_key_lifetime = \"1500ms\"",
        "tls.ticket_key_lifetime = 1.5s is out of range",
    ),
];

#[test]
fn check_config_refuses_a_duration_out_of_range() {
    for (text, needle) in &BAD[..2] {
        refused(text, needle);
    }
}

#[test]
fn check_config_refuses_a_body_on_a_status_that_forbids_one() {
    for (text, needle) in &BAD[2..5] {
        refused(text, needle);
    }
    // A 1xx status was already refused by the status range.
    refused(
        "[default_response]\nstatus = 101\nbody = \"\"",
        "status 101 is not between 200 and 599",
    );
}

#[test]
fn check_config_refuses_a_route_that_can_never_match() {
    for (text, needle) in &BAD[5..7] {
        refused(text, needle);
    }
}

#[test]
fn check_config_refuses_a_fifo_body_file_at_once() {
    let dir = TempDir::new();
    mkfifo(&dir.path().join("fifo"));
    let start = Instant::now();
    let (code, stderr) = check_config(&dir, "[[route]]\npath = \"/\"\nbody_file = \"$DIR/fifo\"");
    let took = start.elapsed();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("a FIFO, not a regular file"), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn sighup_with_a_bad_config_is_refused_and_the_old_one_keeps_serving() {
    let server = Server::start("[default_response]\nbody = \"old\\n\"");
    for (i, (text, needle)) in BAD[..7].iter().enumerate() {
        reload_refused(&server, text, needle, i + 1);
    }
}

#[test]
fn sighup_with_a_fifo_body_file_does_not_block_the_supervisor() {
    let mut server = Server::start("[default_response]\nbody = \"old\\n\"");
    mkfifo(&server.dir().join("fifo"));
    let (text, needle) = BAD[7];
    reload_refused(&server, text, needle, 1);
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(5));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "no clean exit within 5 s after SIGTERM; stderr:\n{}",
        server.stderr()
    );
}

/// Write `text` as the server's config and SIGHUP it: the reload (the `nth` to fail) must be
/// refused with `needle` in its log line, and the old config (body `old`) must keep serving.
fn reload_refused(server: &Server, text: &str, needle: &str, nth: usize) {
    let dir = server.dir().display().to_string();
    std::fs::write(
        server.dir().join("cerberus.toml"),
        text.replace("$DIR", &dir),
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    wait_for_log(server, "reload failed", nth);
    let log = server.stderr();
    let last = log.lines().rfind(|l| l.contains("reload failed")).unwrap();
    assert!(
        last.contains(needle) && last.contains("still serving the previous configuration"),
        "{last}"
    );
    let res = roundtrip(server.addr(), b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(res.body, b"old\n", "after {text:?}");
}

/// Wait (bounded) until the server's stderr contains `needle` `count` times.
fn wait_for_log(server: &Server, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stderr().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {count}x {needle:?} in stderr:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn check_config_refuses_a_body_file_that_is_a_directory_or_past_64_mib() {
    let dir = TempDir::new();
    // Sparse: 64 MiB and one byte, without writing them.
    let big = std::fs::File::create(dir.path().join("big")).unwrap();
    big.set_len(64 * 1024 * 1024 + 1).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    for (text, needle) in [
        (
            "[default_response]\nbody_file = \"$DIR/big\"",
            "/big: 67108865 bytes is more than the limit of 67108864 bytes (64 MiB)",
        ),
        (
            "[[route]]\npath = \"/\"\nbody_file = \"$DIR/sub\"",
            "/sub: a directory, not a regular file",
        ),
    ] {
        let (code, stderr) = check_config(&dir, text);
        assert_eq!(code, Some(2), "{text:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{text:?}: no {needle:?} in {stderr}"
        );
    }
}
