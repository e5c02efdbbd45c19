//! `cerberus reload`: SIGHUP to a running server, and an exit status that says whether the
//! new configuration is in force: 0 only once every worker serves it (so the very next
//! request sees it), 1 when the server refused it and keeps the old one.

mod common;

use common::{roundtrip, run_bin, Server};

fn config(body: &str) -> String {
    config_with(2, body)
}

fn config_with(workers: usize, body: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nworkers = {workers}\n[default_response]\nbody = \"{body}\\n\"\n"
    )
}

fn start() -> Server {
    Server::builder(&config("v0"))
        .flags_from_config()
        .metrics_listen("127.0.0.1:0")
        .start()
}

/// Write the server's config file as the builder does, without signalling it.
fn put_config(server: &Server, text: &str) {
    std::fs::write(
        server.dir().join("cerberus.toml"),
        format!("pin = false\n{text}"),
    )
    .unwrap();
}

fn reload(server: &Server) -> (i32, String) {
    let (pid, metrics) = (server.pid().to_string(), server.metrics().to_string());
    let (status, _, stderr) = run_bin(&["reload", "--pid", &pid, "--metrics", &metrics]);
    (status.code().unwrap_or(-1), stderr)
}

fn body(server: &Server) -> Vec<u8> {
    roundtrip(server.addr(), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").body
}

#[test]
fn a_request_right_after_the_reload_returns_sees_the_new_config_every_time() {
    let server = start();
    // Every fifth reload changes the worker count too: a new generation, on the same sockets,
    // while the old one drains.
    for i in 1..=30 {
        let want = format!("v{i}");
        let workers = if i % 5 == 0 { 2 + i % 3 } else { 2 };
        put_config(&server, &config_with(workers, &want));
        let (code, stderr) = reload(&server);
        assert_eq!(code, 0, "reload {i}: {stderr}");
        assert_eq!(body(&server), format!("{want}\n").as_bytes(), "reload {i}");
    }
}

#[test]
fn a_refused_config_exits_1_and_the_old_one_keeps_serving() {
    let server = start();
    put_config(&server, "workers = \"many\"\n");
    let (code, stderr) = reload(&server);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert_eq!(body(&server), b"v0\n");
    server.wait_stderr("reload failed", 1);
}

#[test]
fn it_signals_nothing_but_a_cerberus_and_needs_the_metrics() {
    let server = start();
    let metrics = server.metrics().to_string();
    // This test's own process is no Cerberus; pid 1 is init.
    for pid in [std::process::id().to_string(), "1".to_owned()] {
        let (status, _, stderr) = run_bin(&["reload", "--pid", &pid, "--metrics", &metrics]);
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cannot signal"), "{stderr}");
    }
    // With metrics off in its config, the outcome cannot be read: a usage error, no signal.
    let dir = common::TempDir::new();
    let path = dir.write("c.toml", b"metrics_listen = \"off\"\n");
    let pid = server.pid().to_string();
    let (status, _, stderr) =
        run_bin(&["reload", "--pid", &pid, "--config", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("metrics_listen is off"), "{stderr}");
    assert_eq!(
        server.stderr().matches("reload").count(),
        0,
        "it was signalled"
    );
}
