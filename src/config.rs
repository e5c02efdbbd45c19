//! The configuration: what the TOML file may say, its defaults, and its validation.
//!
//! Every field is optional. An unknown key is an error that names the key and the file, so a
//! typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod body_file;

pub use body_file::{read_body_file, MAX_BODY_FILE};

/// Shortest timeout: one tick of the workers' timing wheel, the resolution of every timeout.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);
/// Longest timeout: a day. Longer is a typo, not a policy, and the bound keeps every deadline
/// (`now + timeout`) far from overflowing.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Smallest `access_log_buffer`: a batch should hold at least a few lines.
pub const MIN_LOG_BUFFER: usize = 1024;
/// Largest `access_log_buffer`: every worker holds one, and the log thread's queue a few
/// dozen; 16 MiB is already a minute of lines at a busy worker's rate.
pub const MAX_LOG_BUFFER: usize = 16 * 1024 * 1024;

/// The whole configuration, as read from `--config` and overridden by flags.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address every worker listens on. `[::]:8000` is dual-stack.
    pub listen: SocketAddr,
    /// Worker threads; 0 means one per CPU this process may run on.
    pub workers: usize,
    /// Pin each worker to one CPU, so its cache and its listener's flow stay on one core.
    pub pin: bool,
    /// Listen backlog per worker. The kernel caps it at `net.core.somaxconn`.
    pub backlog: u32,
    /// Let the kernel hand over a connection only once its first bytes have arrived
    /// (TCP_DEFER_ACCEPT), so its first request is answered without waiting on epoll. A client
    /// that connects and stays silent is accepted after about a second, and the header timeout
    /// runs from then.
    pub defer_accept: bool,
    /// Open connections per worker; beyond it, new connections wait in the accept queue.
    pub max_connections: usize,
    /// How new connections are spread over the workers: `"load"` hands a connection accepted
    /// by a worker over its fair share to the least loaded one (the default: even with a few
    /// long connections, no worker idles while another is overloaded); `"hash"` leaves it to
    /// the kernel's `SO_REUSEPORT` hash of the addresses.
    pub balance: Balance,
    /// Where the metrics thread serves `/metrics`, `/healthz` and `/readyz`; `"off"` disables it.
    pub metrics_listen: MetricsListen,
    /// Whether `application/json` bodies are parsed (and rejected with 400 when invalid).
    pub json: JsonMode,
    /// Largest request body, in bytes; larger ones get 413. 1 MiB covers typical API payloads.
    pub max_body: u64,
    /// Unsent response bytes per connection before the server stops reading from it.
    pub max_output: usize,
    /// Responses that complete later (a `shape` route's delays and drips) one connection may
    /// have queued before the server stops reading from it.
    pub max_pending: usize,
    /// Time allowed for a request head to arrive, from its first byte (or from accept).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time allowed between two reads of a request body.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// How long a client that does not read its responses may block our writes.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long SIGTERM waits for in-flight requests before exiting anyway.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Slowest a request body may arrive, averaged over each `min_rate_window` (the first
    /// window is the grace): a client trickling its body ("slow POST") is closed instead of
    /// holding its connection without limit. 1 KiB/s is 16 times below the slowest client
    /// served (a poor mobile link, 16 KiB/s), and caps the time a `max_body` body can take
    /// at about 17 minutes. `"off"` disables it.
    pub min_body_rate: Rate,
    /// Slowest a client may read what it is owed, averaged the same way ("slow read").
    pub min_send_rate: Rate,
    /// The window the minimum rates are averaged over. 10 s smooths a stall or two of a
    /// real network while closing a one-byte-a-second client within seconds of the first
    /// window.
    #[serde(with = "humantime_serde")]
    pub min_rate_window: Duration,
    /// Where each answered request gets one line: `"off"`, `"stderr"` or an absolute file
    /// path. Off by default: a default cannot know a path the service may write (a
    /// `DynamicUser` unit, a read-only container root), stderr would put every request through
    /// the journal, and an upgrade should not start filling a disk unasked. The shipped
    /// systemd unit and example config show how to turn it on. Reopened on SIGUSR1
    /// (logrotate); a reload may change it.
    pub access_log: AccessLog,
    /// The access log's line format: `"combined"` (nginx's default, byte for byte) or
    /// `"json"` (one object per line; see `access_log::format` for the field names).
    pub access_log_format: AccessLogFormat,
    /// Bytes of access-log lines a worker gathers before it hands them to the log thread as
    /// one write. 64 KiB, nginx's `buffer=` default: a few hundred lines per write.
    pub access_log_buffer: usize,
    /// Longest time a gathered access-log line waits before it is handed over, however few
    /// lines there are: how far behind a `tail -f` may run. One second, like the `Date` header.
    #[serde(with = "humantime_serde")]
    pub access_log_flush: Duration,
    /// The HTTPS listener and its certificates; none without a `[tls]` table.
    pub tls: Option<TlsConfig>,
    /// The response when no route matches.
    pub default_response: StaticResponse,
    /// Routes, tried in order; the first match wins.
    #[serde(rename = "route")]
    pub routes: Vec<Route>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            workers: 0,
            pin: true,
            backlog: 4096,
            defer_accept: true,
            max_connections: 16384,
            balance: Balance::Load,
            metrics_listen: MetricsListen::On(SocketAddr::from(([127, 0, 0, 1], 8010))),
            json: JsonMode::Validate,
            max_body: 1024 * 1024,
            max_output: 1024 * 1024,
            max_pending: 64,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            min_body_rate: Rate(1024),
            min_send_rate: Rate(1024),
            min_rate_window: Duration::from_secs(10),
            access_log: AccessLog::Off,
            access_log_format: AccessLogFormat::Combined,
            access_log_buffer: 64 * 1024,
            access_log_flush: Duration::from_secs(1),
            tls: None,
            default_response: StaticResponse::default(),
            routes: Vec::new(),
        }
    }
}

/// `[tls]`: a second listener, which speaks HTTPS, and the certificates it presents.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address every worker listens on for HTTPS, beside `listen`.
    pub listen: SocketAddr,
    /// The certificate chain (PEM, leaf first) presented when no other certificate matches
    /// the name the client asked for (SNI), or when it asked for none.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// More certificates, each presented to clients that ask (SNI) for a name it holds.
    #[serde(default, rename = "certificate")]
    pub certificates: Vec<CertificatePair>,
    /// Time allowed for the TLS handshake, from accept.
    #[serde(with = "humantime_serde", default = "default_handshake_timeout")]
    pub handshake_timeout: Duration,
    /// How long one session ticket key encrypts new tickets; it then decrypts for as long
    /// again, so a ticket resumes for up to twice this.
    #[serde(with = "humantime_serde", default = "default_ticket_key_lifetime")]
    pub ticket_key_lifetime: Duration,
}

/// One `[[tls.certificate]]`: a chain and its key.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertificatePair {
    /// The certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_ticket_key_lifetime() -> Duration {
    MAX_TICKET_KEY_LIFETIME
}

/// The longest `tls.ticket_key_lifetime`: rustls's own ticketer, which each key is made
/// with, rotates every six hours.
pub const MAX_TICKET_KEY_LIFETIME: Duration = Duration::from_secs(6 * 60 * 60);

impl TlsConfig {
    /// Every pair, the default one first.
    pub fn pairs(&self) -> impl Iterator<Item = (&Path, &Path)> {
        std::iter::once((self.cert.as_path(), self.key.as_path())).chain(
            self.certificates
                .iter()
                .map(|p| (p.cert.as_path(), p.key.as_path())),
        )
    }
}

/// The metrics listener address, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListen {
    /// Serve metrics here.
    On(SocketAddr),
    /// No metrics listener.
    Off,
}

impl std::str::FromStr for MetricsListen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "off" {
            return Ok(MetricsListen::Off);
        }
        s.parse()
            .map(MetricsListen::On)
            .map_err(|_| format!("`{s}` is neither an address like 127.0.0.1:8010 nor \"off\""))
    }
}

/// A rate in bytes per second; 0 is off. Written `"1KiB/s"`, `"512B/s"`, `"2MiB/s"` or
/// `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u64);

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "off" {
            return Ok(Rate(0));
        }
        let bad = || format!("`{s}` is not a rate like \"1KiB/s\", \"512B/s\" or \"off\"");
        let amount = s.strip_suffix("/s").ok_or_else(bad)?;
        let digits = amount.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = amount[..digits].parse().map_err(|_| bad())?;
        let unit = match &amount[digits..] {
            "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            _ => return Err(bad()),
        };
        n.checked_mul(unit).map(Rate).ok_or_else(bad)
    }
}

/// How new connections are spread over the workers (see [`Config::balance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// Hand connections over the fair share to the least loaded worker.
    Load,
    /// The kernel's hash of the connection's addresses chooses.
    Hash,
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    /// No access log: the request path does not look at it again.
    Off,
    /// Standard error (the journal, under systemd; the container log, under a runtime).
    Stderr,
    /// This file, opened for appending (created with mode 0640 if missing).
    File(PathBuf),
}

impl std::str::FromStr for AccessLog {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(AccessLog::Off),
            "stderr" => Ok(AccessLog::Stderr),
            path if Path::new(path).is_absolute() => Ok(AccessLog::File(path.into())),
            _ => Err(format!(
                "access_log = `{s}`: use \"off\", \"stderr\" or an absolute path (a relative \
                 one would depend on the directory the service starts in)"
            )),
        }
    }
}

/// Values written as a TOML string and read with their `FromStr`, whose message is the error.
macro_rules! deserialize_by_parsing {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    )*};
}

deserialize_by_parsing!(MetricsListen, Rate, AccessLog);

/// How an access-log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// nginx's `combined`: `$remote_addr - $remote_user [$time_local] "$request" $status
    /// $body_bytes_sent "$http_referer" "$http_user_agent"`.
    Combined,
    /// One JSON object per line, with fixed field names.
    Json,
}

/// What to do with JSON request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonMode {
    /// Parse `application/json` bodies; answer 400 with the position when invalid.
    Validate,
    /// Treat JSON bodies like any other bytes.
    Off,
}

/// A fixed response: the default one, or a `static` route's.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StaticResponse {
    /// Status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: String,
    /// The body, unless `body_file` is set.
    pub body: String,
    /// Read the body from this file at start and at reload.
    pub body_file: Option<PathBuf>,
    /// Extra response headers.
    pub headers: BTreeMap<String, String>,
}

impl Default for StaticResponse {
    fn default() -> Self {
        StaticResponse {
            status: 200,
            content_type: "text/plain".into(),
            body: "Hello from Cerberus!\n".into(),
            body_file: None,
            headers: BTreeMap::new(),
        }
    }
}

/// Which built-in handler a route uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HandlerKind {
    /// A fixed response.
    #[default]
    Static,
    /// The request body back, with its Content-Type.
    Echo,
    /// A JSON description of the request.
    Inspect,
    /// A response shaped by the query string (or the route's `[route.shape]`): delays,
    /// statuses, sizes, drips, closes and resets, for load tests.
    Shape,
}

/// A `shape` route's `[route.shape]`: the shape its requests get by default, in the grammar of
/// its query arguments, and what a client may ask for.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShapeConfig {
    /// Statuses by percent (`"503:20,429:5"`); the rest get the route's `status`.
    pub status: Option<String>,
    /// The delay (`"10ms"`, `"10ms:50,200ms:1"`, `"5ms..50ms"`, `"p50:5ms,p99:80ms"`).
    pub delay: Option<String>,
    /// The body size, in the same forms (`"1KiB"`).
    pub size: Option<String>,
    /// The body in pieces over time (`"10x100ms"`).
    pub drip: Option<String>,
    /// Percent of responses sent with `Connection: close`.
    pub close: Option<String>,
    /// Percent of requests answered with a TCP reset.
    pub reset: Option<String>,
    /// Headers added (`"Name:Value"`).
    pub header: Vec<String>,
    /// Seed of every random choice on a connection.
    pub seed: Option<u64>,
    /// Whether clients may shape their responses with query arguments (each one they give
    /// replaces the route's); `false` pins the route's shape.
    pub query: bool,
    /// Longest delay (and drip) a client may ask for.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Largest body a client may ask for, in bytes.
    pub max_size: u64,
    /// Most pieces a drip may have.
    pub max_drip_pieces: u32,
    /// Send bodies of responses that complete later with `sendfile` from a memory file instead
    /// of `writev` from the pattern: less server CPU per byte, but on loopback the client
    /// receives it more slowly (see benches/README.md).
    pub sendfile: bool,
}

impl Default for ShapeConfig {
    fn default() -> Self {
        ShapeConfig {
            status: None,
            delay: None,
            size: None,
            drip: None,
            close: None,
            reset: None,
            header: Vec::new(),
            seed: None,
            query: true,
            max_delay: Duration::from_secs(10),
            max_size: 64 * 1024 * 1024,
            max_drip_pieces: 1000,
            sendfile: false,
        }
    }
}

/// Longest `max_delay` a shape route may allow.
pub const MAX_SHAPE_DELAY: Duration = Duration::from_secs(3600);

impl ShapeConfig {
    /// What its clients may ask for.
    pub fn limits(&self) -> crate::shape::grammar::Limits {
        crate::shape::grammar::Limits {
            max_delay_us: self.max_delay.as_micros().min(u128::from(u64::MAX)) as u64,
            max_size: self.max_size,
            max_drip_pieces: self.max_drip_pieces,
            ..crate::shape::grammar::Limits::default()
        }
    }

    /// The shape its requests get when they ask for nothing, checked against its limits.
    pub fn spec(&self) -> Result<crate::shape::grammar::Spec, String> {
        let limits = self.limits();
        let mut spec = crate::shape::grammar::Spec::default();
        let seed = self.seed.map(|s| s.to_string());
        let single = [
            ("status", &self.status),
            ("delay", &self.delay),
            ("size", &self.size),
            ("drip", &self.drip),
            ("close", &self.close),
            ("reset", &self.reset),
            ("seed", &seed),
        ];
        let headers = self.header.iter().map(|h| ("header", Some(h)));
        let given = single.iter().map(|(k, v)| (*k, v.as_ref())).chain(headers);
        for (key, value) in given {
            if let Some(value) = value {
                spec.set(key, value, &limits)
                    .map_err(|e| format!("shape.{key}: {}", e.why))?;
            }
        }
        Ok(spec)
    }
}

/// One `[[route]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Match this method only; any method when absent.
    pub method: Option<String>,
    /// Match this exact path.
    pub path: Option<String>,
    /// Match paths starting with this.
    pub prefix: Option<String>,
    /// The handler.
    #[serde(default)]
    pub handler: HandlerKind,
    /// Status code of a `static` route; 200 when absent.
    pub status: Option<u16>,
    /// `Content-Type` of a `static` route's body; `text/plain` when absent.
    pub content_type: Option<String>,
    /// The body of a `static` route.
    pub body: Option<String>,
    /// Read a `static` route's body from this file, at start and at reload.
    pub body_file: Option<PathBuf>,
    /// Extra headers of a `static` or `shape` route.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A `shape` route's default shape and limits.
    pub shape: Option<ShapeConfig>,
}

/// Values given on the command line, which win over the file (at start and at every reload).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--workers`
    pub workers: Option<usize>,
    /// `--metrics-listen`
    pub metrics_listen: Option<MetricsListen>,
}

/// Where the configuration comes from: an optional file, then the command-line overrides.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The TOML file, if any.
    pub path: Option<PathBuf>,
    /// Flags that override it.
    pub overrides: Overrides,
}

impl ConfigSource {
    /// Read the file (if any), apply the overrides, and validate.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let o = &self.overrides;
        if let Some(listen) = o.listen {
            config.listen = listen;
        }
        if let Some(workers) = o.workers {
            config.workers = workers;
        }
        if let Some(metrics) = o.metrics_listen {
            config.metrics_listen = metrics;
        }
        config.validate().map_err(|message| ConfigError {
            file: self.path.clone(),
            message,
        })?;
        Ok(config)
    }
}

/// A configuration that could not be loaded: the file, and what is wrong with it.
#[derive(Debug)]
pub struct ConfigError {
    /// The file, if the problem is in one.
    pub file: Option<PathBuf>,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "config {}: {}", file.display(), self.message),
            None => write!(f, "config: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Read and validate a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: Some(path.to_owned()),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let config: Config = toml::from_str(&text).map_err(|e| err(one_line(&text, &e)))?;
        config.validate().map_err(err)?;
        Ok(config)
    }

    /// Check what the types cannot: ranges, and fields that must go together.
    pub fn validate(&self) -> Result<(), String> {
        if self.workers > 1024 {
            return Err(format!("workers = {} is more than 1024", self.workers));
        }
        if self.backlog == 0
            || self.max_connections == 0
            || self.max_output == 0
            || self.max_pending == 0
        {
            return Err(
                "backlog, max_connections, max_output and max_pending must be at least 1".into(),
            );
        }
        for (name, d) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("keepalive_timeout", self.keepalive_timeout),
            ("write_timeout", self.write_timeout),
            ("drain_timeout", self.drain_timeout),
            ("min_rate_window", self.min_rate_window),
            ("access_log_flush", self.access_log_flush),
        ] {
            if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&d) {
                return Err(format!(
                    "{name} = {d:?} is out of range: it must be between 10ms and 24h"
                ));
            }
        }
        if let Some(tls) = &self.tls {
            if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&tls.handshake_timeout) {
                return Err(format!(
                    "tls.handshake_timeout = {:?} is out of range: it must be between 10ms and 24h",
                    tls.handshake_timeout
                ));
            }
            let lifetime = tls.ticket_key_lifetime;
            if lifetime.subsec_nanos() != 0
                || !(Duration::from_secs(1)..=MAX_TICKET_KEY_LIFETIME).contains(&lifetime)
            {
                return Err(format!(
                    "tls.ticket_key_lifetime = {lifetime:?} is out of range: it must be whole \
                     seconds between 1s and 6h"
                ));
            }
            if tls.listen == self.listen && tls.listen.port() != 0 {
                return Err(format!(
                    "tls.listen = {} is also `listen`: HTTP and HTTPS need their own ports",
                    tls.listen
                ));
            }
        }
        if !(MIN_LOG_BUFFER..=MAX_LOG_BUFFER).contains(&self.access_log_buffer) {
            return Err(format!(
                "access_log_buffer = {} is out of range: it must be between 1024 and 16777216 bytes",
                self.access_log_buffer
            ));
        }
        let default = &self.default_response;
        let body = if default.body_file.is_some() {
            Some("body_file")
        } else {
            (!default.body.is_empty()).then_some("body")
        };
        check_response(default.status, &default.headers, body).map_err(|e| {
            let unset =
                default.body_file.is_none() && default.body == StaticResponse::default().body;
            let hint = if unset && forbids_content(default.status) {
                " (the default body is not empty: set body = \"\")"
            } else {
                ""
            };
            format!("default_response: {e}{hint}")
        })?;
        if default.body_file.is_some() && default.body != StaticResponse::default().body {
            return Err("default_response: set body or body_file, not both".into());
        }
        for (i, route) in self.routes.iter().enumerate() {
            route
                .validate()
                .map_err(|e| format!("route #{} ({}): {e}", i + 1, route.describe()))?;
        }
        self.check_unreachable_routes()
    }

    /// A route that an earlier one always matches first can never answer: refuse it, naming
    /// both, since it is a mistake (a copy left behind, or two routes meant to differ).
    fn check_unreachable_routes(&self) -> Result<(), String> {
        for (j, later) in self.routes.iter().enumerate() {
            let earlier = self.routes[..j].iter().position(|e| e.shadows(later));
            if let Some(i) = earlier {
                return Err(format!(
                    "route #{} ({}) can never match: route #{} ({}) comes first and matches the \
                     same requests",
                    j + 1,
                    later.describe(),
                    i + 1,
                    self.routes[i].describe()
                ));
            }
        }
        Ok(())
    }
}

impl Route {
    fn validate(&self) -> Result<(), String> {
        match (&self.path, &self.prefix) {
            (Some(p), None) | (None, Some(p)) if p.starts_with('/') => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err("path and prefix must start with '/'".into())
            }
            _ => return Err("set exactly one of path or prefix".into()),
        }
        if let Some(m) = &self.method {
            if m.is_empty() || !m.bytes().all(crate::http::is_token) {
                return Err(format!("method `{m}` is not a valid HTTP method token"));
            }
        }
        let r = self;
        if r.body.is_some() && r.body_file.is_some() {
            return Err("set body or body_file, not both".into());
        }
        let shape = self.handler == HandlerKind::Shape;
        if !shape
            && self.handler != HandlerKind::Static
            && (r.status.is_some()
                || r.body.is_some()
                || r.body_file.is_some()
                || r.content_type.is_some())
        {
            return Err(
                "status, body, body_file and content_type only apply to handler = \"static\" \
                 (status and content_type to \"shape\" too)"
                    .into(),
            );
        }
        if shape && (r.body.is_some() || r.body_file.is_some()) {
            return Err("a shape route's body is its size: set shape.size, not body".into());
        }
        if !shape && r.shape.is_some() {
            return Err("[route.shape] only applies to handler = \"shape\"".into());
        }
        if let Some(config) = &r.shape {
            if config.max_delay > MAX_SHAPE_DELAY {
                return Err(format!(
                    "shape.max_delay = {:?} is more than {MAX_SHAPE_DELAY:?}",
                    config.max_delay
                ));
            }
            config.spec()?;
        }
        let body = if r.body_file.is_some() {
            Some("body_file")
        } else {
            r.body.as_ref().filter(|b| !b.is_empty()).map(|_| "body")
        };
        check_response(r.status.unwrap_or(200), &r.headers, body)
    }

    /// Does this route match every request `later` matches? Same path or prefix, and either
    /// any method, the same one, or GET before HEAD (a GET route serves HEAD too).
    fn shadows(&self, later: &Route) -> bool {
        let method = match (self.method.as_deref(), later.method.as_deref()) {
            (None, _) | (Some("GET"), Some("HEAD")) => true,
            (mine, theirs) => mine == theirs,
        };
        method && self.path == later.path && self.prefix == later.prefix
    }

    /// How an error names the route: its method (if any) and its path or prefix.
    fn describe(&self) -> String {
        let method = self
            .method
            .as_deref()
            .map(|m| format!("{m} "))
            .unwrap_or_default();
        match (&self.path, &self.prefix) {
            (Some(p), _) => format!("{method}path = {p:?}"),
            (None, Some(p)) => format!("{method}prefix = {p:?}"),
            (None, None) => format!("{method}no path"),
        }
    }
}

/// Statuses whose responses never have content: 204 (RFC 9110 §15.3.5), 205 (§15.3.6) and 304
/// (§15.4.5). A body there would be read by the client as the start of the next response.
/// (1xx are refused by the status range.)
fn forbids_content(status: u16) -> bool {
    matches!(status, 204 | 205 | 304)
}

/// A TOML error as one log line: `line L, column C: message`.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Check a static response: its status, its headers, and that `body` (the key that gives it a
/// non-empty body, if any) is allowed with that status.
fn check_response(
    status: u16,
    headers: &BTreeMap<String, String>,
    body: Option<&str>,
) -> Result<(), String> {
    if !(200..=599).contains(&status) {
        return Err(format!("status {status} is not between 200 and 599"));
    }
    if let Some(key) = body.filter(|_| forbids_content(status)) {
        return Err(format!(
            "status {status} must not have a body, but {key} is set"
        ));
    }
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(crate::http::is_token) {
            return Err(format!("header name `{name}` is not a token"));
        }
        if value.bytes().any(|c| c < 0x20 && c != b'\t' || c == 0x7f) {
            return Err(format!(
                "header `{name}` has a control character in its value"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "date" | "server"
        ) {
            return Err(format!(
                "header `{name}` is set by the server and cannot be configured"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
