//! The container image (`deploy/container/`): `build.sh` builds it with podman from the binary
//! under test, and the image then runs the way Kubernetes runs it (read-only root, every
//! capability dropped, no new privileges, its own non-root user). It must serve, answer probes
//! and metrics on its published port 8010, reload a mounted config on `podman kill -s HUP`, and
//! drain a request in flight on `podman stop`; HTTPS on its published port 8443 with a mounted
//! certificate, which a SIGHUP replaces. The image holds no shell, and under a one-CPU quota
//! (`--cpus=1`) it starts one worker: workers follow the cgroup CPU quota.
//!
//! podman here needs runc (crun refuses this machine's cgroups) and ulimits below the machine's
//! hard limits (podman's defaults exceed them). Without podman the test skips, and fails under
//! `CI=true`.

mod common;
#[path = "tls/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::metrics_helpers::get;
use common::{TempDir, BIN, READ_TIMEOUT as IO_TIMEOUT};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What every podman call of this test adds: runc, and limits this machine allows.
const RUN_LIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=16384:16384",
    "--ulimit",
    "nproc=4096:4096",
];

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(["--runtime", "runc"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run podman")
}

/// podman's stdout, asserting it succeeded.
fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Is podman usable? Missing fails under `CI=true` (CI installs it) and skips elsewhere.
fn have_podman() -> bool {
    let works = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        common::skip(
            "podman",
            "apt-get install podman runc; .ci/run installs them",
        );
    }
    works
}

/// A built image and a container of it, both removed when dropped.
struct Image {
    tag: String,
    container: String,
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.container]);
        let _ = podman(&["rmi", "-f", &self.tag]);
    }
}

/// Build the image with deploy/container/build.sh from the binary under test.
fn build_image() -> Image {
    let id = std::process::id();
    let image = Image {
        tag: format!("localhost/cerberus-test:{id}"),
        container: format!("cerberus-test-{id}"),
    };
    let started = Instant::now();
    let out = Command::new(Path::new(ROOT).join("deploy/container/build.sh"))
        .env("BINARY", BIN)
        .env("TAG", &image.tag)
        .output()
        .expect("run deploy/container/build.sh");
    assert!(
        out.status.success(),
        "build.sh: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("image built in {:?}", started.elapsed());
    image
}

/// A body-only config like the image's own, with `body` as the default response.
fn config(body: &str) -> String {
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("deploy/container/cerberus.toml"))
        .expect("read deploy/container/cerberus.toml");
    format!(
        "{shipped}\n[tls]\nlisten = \"0.0.0.0:8443\"\ncert = \"/etc/cerberus/tls/tls.crt\"\n\
         key = \"/etc/cerberus/tls/tls.key\"\n[default_response]\nbody = \"{body}\\n\"\n"
    )
}

/// Put a certificate and key where the mounted config names them, readable by the container's
/// user (in Kubernetes, the Secret's group-readable files).
fn write_certificate(etc: &Path, leaf: &support::Leaf) {
    let tls = etc.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    for (name, text) in [("tls.crt", &leaf.cert), ("tls.key", &leaf.key)] {
        let next = tls.join(".next");
        std::fs::write(&next, text).unwrap();
        let _ = Command::new("chmod").arg("644").arg(&next).status();
        std::fs::rename(&next, tls.join(name)).unwrap();
    }
    let _ = Command::new("chmod").arg("755").arg(&tls).status();
}

/// Write the mounted config so the container's user (65532) can read it.
fn write_config(dir: &Path, body: &str) {
    let path = dir.join("cerberus.toml");
    let next = dir.join(".next.toml");
    std::fs::write(&next, config(body)).expect("write config");
    std::fs::rename(&next, &path).expect("replace config");
}

/// The host address podman published `port` on.
fn published(container: &str, port: u16) -> SocketAddr {
    let text = podman_ok(&["port", container, &format!("{port}/tcp")]);
    text.lines()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("podman port {port}: {text:?}"))
}

/// Poll `f` until it is true or `timeout` passes.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn body(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).ok()?;
    s.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// Every path in the image, from `podman export` of a created (never started) container.
fn image_files(image: &Image) -> Vec<String> {
    let name = format!("{}-files", image.container);
    podman_ok(&["create", "--name", &name, &image.tag]);
    let mut export = Command::new("podman")
        .args(["export", &name])
        .stdout(Stdio::piped())
        .spawn()
        .expect("podman export");
    let list = Command::new("tar")
        .arg("-t")
        .stdin(export.stdout.take().expect("piped"))
        .output()
        .expect("tar -t");
    let _ = export.wait();
    let _ = podman(&["rm", "-f", &name]);
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The image holds the binary and no shell, and runs as user 65532.
fn check_contents(image: &Image) {
    let files = image_files(image);
    for shell in ["sh", "bash", "dash", "busybox"] {
        assert!(
            !files.iter().any(|f| f.rsplit('/').next() == Some(shell)),
            "the image holds a {shell}: {files:?}"
        );
    }
    assert!(
        files.iter().any(|f| f == "usr/local/bin/cerberus"),
        "{files:?}"
    );
    let user = podman_ok(&["image", "inspect", "-f", "{{.Config.User}}", &image.tag]);
    assert_eq!(user, "65532:65532");
}

/// Start the container the way Kubernetes runs it, with `etc` mounted as /etc/cerberus.
/// Returns the published request, metrics and HTTPS addresses.
fn run_locked_down(image: &Image, etc: &Path) -> (SocketAddr, SocketAddr, SocketAddr) {
    // The container's user (65532) must be able to read the mounted config.
    for p in [etc.parent().unwrap(), etc] {
        let _ = Command::new("chmod").arg("755").arg(p).status();
    }
    let _ = Command::new("chmod")
        .arg("644")
        .arg(etc.join("cerberus.toml"))
        .status();
    let mount = format!("{}:/etc/cerberus:ro", etc.display());
    let mut run = vec!["run", "-d", "--name", &image.container];
    run.extend(RUN_LIMITS);
    run.extend([
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        // A CPU quota of one CPU: the workers (workers = 0) must follow it, not the host's count.
        "--cpus=1",
        "-p",
        "127.0.0.1::8000",
        "-p",
        "127.0.0.1::8010",
        "-p",
        "127.0.0.1::8443",
        "-v",
        &mount,
        &image.tag,
    ]);
    podman_ok(&run);
    (
        published(&image.container, 8000),
        published(&image.container, 8010),
        published(&image.container, 8443),
    )
}

/// What the container wrote; the server logs to stderr, which `podman logs` replays on its own.
fn logs(image: &Image) -> String {
    let out = podman(&["logs", &image.container]);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Half a request in flight, `podman stop`, then the rest: the full response, then exit 0.
fn check_drain(image: &Image, web: SocketAddr, body: &str) {
    let mut slow = TcpStream::connect_timeout(&web, IO_TIMEOUT).expect("connect");
    slow.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    slow.write_all(
        b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 10\r\n\r\n12345",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stopper = Command::new("podman")
        .args(["--runtime", "runc", "stop", "-t", "15", &image.container])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podman stop");
    assert!(
        eventually(Duration::from_secs(10), || logs(image).contains("draining")),
        "no drain began; logs:\n{}",
        logs(image)
    );
    slow.write_all(b"67890").unwrap();
    let mut reply = String::new();
    slow.read_to_string(&mut reply)
        .expect("read the drained response");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply:?}");
    assert!(reply.ends_with(&format!("\r\n\r\n{body}")), "{reply:?}");
    let stopped = stopper.wait_with_output().expect("wait for podman stop");
    assert!(stopped.status.success(), "{stopped:?}");
    let code = podman_ok(&["inspect", "-f", "{{.State.ExitCode}}", &image.container]);
    assert_eq!(code, "0", "logs:\n{}", logs(image));
}

#[test]
fn the_image_serves_reloads_and_drains() {
    if !have_podman() {
        return;
    }
    let image = build_image();
    check_contents(&image);

    let dir = TempDir::new();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let ca = support::Ca::new();
    let first = ca.leaf(&["localhost"], support::Key::EcdsaP256, 30);
    write_certificate(&etc, &first);
    write_config(&etc, "alpha");
    let (web, metrics, https) = run_locked_down(&image, &etc);

    // Serves, and answers probes and metrics from outside the container.
    assert!(
        eventually(Duration::from_secs(15), || body(web).as_deref()
            == Some("alpha\n")),
        "never served alpha; logs:\n{}",
        logs(&image)
    );
    assert_eq!(get(metrics, "/readyz").status, 200);
    assert_eq!(get(metrics, "/healthz").status, 200);
    let scrape = get(metrics, "/metrics").text();
    assert!(scrape.contains("cerberus_requests_total{"), "{scrape}");
    assert!(
        scrape.lines().any(|l| l == "cerberus_workers 1"),
        "one worker under a one-CPU quota:\n{scrape}"
    );
    // HTTPS, with the mounted certificate.
    let mut c = support::Https::connect(https, "localhost", &ca.client(None)).unwrap();
    let reply = c.get("/").unwrap();
    assert_eq!(reply.body, b"alpha\n");
    assert_eq!(c.peer_leaf(), first.der);
    let users = podman_ok(&["top", &image.container, "user"]);
    assert!(
        !users.lines().skip(1).any(|l| l.trim() == "root"),
        "{users}"
    );

    // Reload: a changed mounted file and a renewed certificate, then SIGHUP through podman.
    let renewed = ca.leaf(&["localhost"], support::Key::EcdsaP256, 60);
    write_certificate(&etc, &renewed);
    write_config(&etc, "bravo");
    podman_ok(&["kill", "-s", "HUP", &image.container]);
    assert!(
        eventually(Duration::from_secs(10), || body(web).as_deref()
            == Some("bravo\n")),
        "still not bravo after SIGHUP; logs:\n{}",
        logs(&image)
    );
    let c = support::Https::connect(https, "localhost", &ca.client(None)).unwrap();
    assert_eq!(
        c.peer_leaf(),
        renewed.der,
        "the renewed certificate after SIGHUP"
    );

    check_drain(&image, web, "bravo\n");
}
