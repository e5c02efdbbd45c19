//! The process around the protocol: graceful shutdown on SIGTERM, command-line and config
//! errors and their exit codes, dual-stack listening, and running out of file descriptors.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use common::launch::Launched;
use common::{default_response, normalize_date, run_bin, Client, Server, TempDir, DATE};

const ECHO: &str = "drain_timeout = \"5s\"\n[[route]]\npath = \"/echo\"\nhandler = \"echo\"";

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let mut server = Server::start(ECHO);
    let mut c = server.connect();
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    c.send("hello");
    // The response says the connection closes, because the server is draining.
    assert_eq!(
        normalize_date(&c.read_to_eof()),
        format!(
            "HTTP/1.1 200 OK\r\nServer: cerberus\r\nDate: {DATE}\r\nContent-Length: 5\r\n\
             Connection: close\r\n\r\nhello"
        )
    );
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exits within the drain timeout");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    assert!(signalled.elapsed() < Duration::from_secs(5));
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_and_stops_listening() {
    // Without TCP_DEFER_ACCEPT, so that the connection that never speaks is accepted (with
    // it, the kernel holds such a connection for about a second before handing it over).
    let mut server = Server::start(&format!("defer_accept = false\n{ECHO}"));
    let addr = server.addr();
    let mut idle = server.connect();
    idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(idle.read_response().normalized(), default_response(""));
    let mut silent = server.connect();
    std::thread::sleep(Duration::from_millis(100));
    server.signal(libc::SIGTERM);
    idle.expect_eof_within(Duration::from_secs(2));
    silent.expect_eof_within(Duration::from_secs(2));
    let status = server.wait_exit(Duration::from_secs(3)).expect("exits");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "still accepting after exit"
    );
}

#[test]
fn drain_timeout_bounds_a_request_that_never_finishes() {
    let mut server = Server::start("drain_timeout = \"500ms\"\nheader_timeout = \"30s\"");
    let mut c = server.connect();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(3))
        .expect("exits after the drain timeout");
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
        "exited after {took:?}"
    );
    assert!(
        server.stderr().contains("drain timeout"),
        "{}",
        server.stderr()
    );
}

#[test]
fn second_sigterm_exits_at_once() {
    let mut server = Server::start("drain_timeout = \"30s\"\nheader_timeout = \"30s\"");
    let mut c = server.connect();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n");
    std::thread::sleep(Duration::from_millis(100));
    server.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.wait_exit(Duration::ZERO).is_none(), "still draining");
    let second = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(2))
        .expect("the second signal exits at once");
    assert!(second.elapsed() < Duration::from_secs(1));
    assert_eq!(status.code(), Some(1), "stderr:\n{}", server.stderr());
}

#[test]
fn unknown_config_key_exits_2_naming_key_and_file() {
    let dir = TempDir::new();
    let path = dir.write("bad.toml", b"workers = 1\nlistn = \"127.0.0.1:0\"\n");
    let path_text = path.to_str().unwrap();
    let (status, _, stderr) = run_bin(&["--config", path_text, "--metrics-listen", "off"]);
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("listn"), "key not named: {stderr}");
    assert!(stderr.contains(path_text), "file not named: {stderr}");
}

#[test]
fn check_config_exits_0_on_a_good_file_and_2_on_a_missing_body_file() {
    let dir = TempDir::new();
    let good = dir.write(
        "good.toml",
        b"workers = 2\nheader_timeout = \"250ms\"\n[[route]]\npath = \"/e\"\nhandler = \"echo\"\n",
    );
    let (status, _, stderr) = run_bin(&["--check-config", "--config", good.to_str().unwrap()]);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");

    let missing = dir.path().join("missing.html");
    let bad = dir.write(
        "bad.toml",
        format!(
            "[[route]]\npath = \"/\"\nbody_file = \"{}\"\n",
            missing.display()
        )
        .as_bytes(),
    );
    let (status, _, stderr) = run_bin(&["--check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("missing.html"), "{stderr}");
}

#[test]
fn taken_port_exits_1_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, _, stderr) = run_bin(&[
        "--listen",
        &addr,
        "--workers",
        "1",
        "--metrics-listen",
        "off",
    ]);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(&addr), "address not named: {stderr}");
}

/// With `SO_REUSEPORT`, a second instance could bind the port of a running one and silently
/// take part of its connections. It must refuse to start instead.
#[test]
fn a_second_instance_on_the_same_port_exits_1_and_the_first_still_serves() {
    let addr = {
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().to_string()
    };
    let first = Server::builder("").listen(&addr).workers(2).start();
    let mut second = Launched::spawn(Command::new(common::BIN).args([
        "--listen",
        &addr,
        "--workers",
        "2",
        "--metrics-listen",
        "off",
    ]));
    let status = second.wait_exit(Duration::from_secs(5));
    let stderr = second.stderr();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "second instance: {status:?}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&addr) && stderr.contains("in use"),
        "address not named: {stderr}"
    );
    // Every connection reaches the first instance, which still serves.
    for _ in 0..8 {
        let mut c = first.connect();
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.read_response().normalized(), default_response(""));
    }
}

#[test]
fn help_lists_the_flags() {
    let (status, stdout, _) = run_bin(&["--help"]);
    assert_eq!(status.code(), Some(0));
    for flag in [
        "--listen",
        "--workers",
        "--metrics-listen",
        "--config",
        "--check-config",
    ] {
        assert!(stdout.contains(flag), "{flag} missing from:\n{stdout}");
    }
}

#[test]
fn dual_stack_listener_accepts_ipv4_and_ipv6() {
    if !common::has_ipv6_loopback() {
        common::skip("an IPv6 loopback address", "::1 must be configured on lo");
        return;
    }
    let server = Server::builder("").listen("[::]:0").start();
    let port = server.bound().port();
    for ip in ["127.0.0.1", "[::1]"] {
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let mut c = Client::connect(addr);
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.read_response().normalized(), default_response(""), "{ip}");
    }
}

#[test]
fn out_of_file_descriptors_pauses_accepting_without_spinning() {
    // Without prlimit the limit cannot be set: skip, or fail under `CI=true`.
    if common::tool("prlimit", "util-linux").is_none() {
        return;
    }
    let server = Server::builder("").nofile(40).start();
    // More connections than the server has descriptors: the rest wait in the accept queue.
    // Each sends the start of a request, so that TCP_DEFER_ACCEPT hands it over at once.
    let mut clients: Vec<Client> = (0..60)
        .map(|_| {
            let mut c = server.connect();
            c.send("GET / HTTP/1.1\r\n");
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Every descriptor the limit allows is in use, and the server said why it stopped accepting.
    assert_eq!(server.open_fds_below(40), 40);
    assert!(
        server.stderr().contains("Too many open files"),
        "stderr:\n{}",
        server.stderr()
    );
    let before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_ticks() - before;
    // Clock ticks are 1/100 s: 20 ticks is 20% of one core. A server that retries accept in a
    // loop uses all of a core.
    assert!(used < 20, "{used} ticks of CPU in 1 s while out of fds");
    let mut probe = clients.pop().unwrap();
    drop(clients);
    // Once descriptors are free, queued and new connections are served.
    probe.send("Host: x\r\n\r\n");
    assert_eq!(probe.read_response().normalized(), default_response(""));
    let mut fresh = server.connect();
    fresh.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(fresh.read_response().normalized(), default_response(""));
}
