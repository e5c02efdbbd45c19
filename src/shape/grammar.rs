//! What a client may ask of a `shape` route, in its query string: the grammar of fortio's echo
//! server where the two overlap (`status=503:20,429:5`, `delay=10ms:50,200ms:1`, `size=1024`,
//! `close=5`, `header=Name:Value`), and Cerberus's own beyond it (uniform `5ms..50ms`,
//! log-normal `p50:5ms,p99:80ms`, `drip=10x100ms`, `reset=1`, `seed=42`).
//!
//! [`Spec::parse_query`] reads it, refusing anything it does not know with a [`ShapeError`]
//! that names the argument; [`Spec`]'s `Display` writes it back, so that what was parsed and
//! printed parses to the same spec; [`Spec::plan`] draws one request's shape. Parsing the
//! common case allocates nothing, and nothing takes more than linear time.

use std::borrow::Cow;
use std::fmt;

use smallvec::SmallVec;

use super::dist::Dist;

/// A body sent in pieces over time: `drip=10x100ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drip {
    /// Pieces (chunks), at least 1.
    pub pieces: u32,
    /// Time between two pieces, in microseconds.
    pub interval_us: u64,
}

/// What a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest delay, and longest drip (pieces times interval), in microseconds.
    pub max_delay_us: u64,
    /// Largest body, in bytes.
    pub max_size: u64,
    /// Most pieces of a drip.
    pub max_drip_pieces: u32,
    /// Longest weighted list.
    pub max_list: usize,
    /// Most `header=` arguments.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_delay_us: 10_000_000,
            max_size: 64 << 20,
            max_drip_pieces: 1000,
            max_list: 64,
            max_headers: 16,
        }
    }
}

/// A response's shape, as asked: each part is drawn per request by [`Spec::plan`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    /// Statuses by percent (fixed or weighted; 200..=599); the rest get the route's status.
    pub status: Option<Dist>,
    /// The delay, in microseconds.
    pub delay: Option<Dist>,
    /// The body size, in bytes.
    pub size: Option<Dist>,
    /// The body in pieces over time.
    pub drip: Option<Drip>,
    /// Percent of responses sent with `Connection: close`.
    pub close: Option<f64>,
    /// Percent of requests answered by a TCP reset.
    pub reset: Option<f64>,
    /// Headers added to the response.
    pub headers: Vec<(String, String)>,
    /// Seed of the connection's draws.
    pub seed: Option<u64>,
}

/// One request's shape, drawn from a [`Spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The status, if the spec's list gave one.
    pub status: Option<u16>,
    /// The delay, in microseconds.
    pub delay_us: u64,
    /// The body size, if the spec gave one.
    pub size: Option<u64>,
    /// Send it with `Connection: close`, and close.
    pub close: bool,
    /// Reset the connection instead of answering.
    pub reset: bool,
}

/// Why an argument was refused: the client gets it as a 400's JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    /// The argument's name (as given, at most 64 characters, for an unknown one).
    pub arg: String,
    /// What is wrong and what was expected.
    pub why: String,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.arg, self.why)
    }
}

impl std::error::Error for ShapeError {}

/// The arguments, in the order a spec prints them.
const KEYS: [&str; 8] = [
    "status", "delay", "size", "drip", "close", "reset", "header", "seed",
];

/// Headers the server writes itself.
const SERVER_HEADERS: [&str; 7] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "server",
    "server-timing",
    "x-cerberus-shape",
];

/// A refusal of `arg` (cold: only bad input gets here).
#[cold]
fn refuse(arg: &str, why: impl Into<String>) -> ShapeError {
    ShapeError {
        arg: arg.chars().take(64).collect(),
        why: why.into(),
    }
}

impl Spec {
    /// Parse a query string (without its `?`). Every argument must be one of the keys; only
    /// `header` may repeat. Values are percent-decoded (`%XX`; `+` stays a plus).
    pub fn parse_query(query: &[u8], limits: &Limits) -> Result<Spec, ShapeError> {
        let mut spec = Spec::default();
        let mut seen = 0u8;
        for arg in query.split(|&b| b == b'&').filter(|a| !a.is_empty()) {
            let (key, value) = match arg.iter().position(|&b| b == b'=') {
                Some(eq) => (&arg[..eq], &arg[eq + 1..]),
                None => (arg, &[][..]),
            };
            let Some(slot) = KEYS.iter().position(|k| k.as_bytes() == key) else {
                let why = "unknown argument; expected one of status, delay, size, drip, close, \
                           reset, header, seed";
                return Err(refuse(&String::from_utf8_lossy(key), why));
            };
            let name = KEYS[slot];
            if name != "header" {
                if seen & (1 << slot) != 0 {
                    return Err(refuse(name, "given twice"));
                }
                seen |= 1 << slot;
            }
            let value = decode(value).ok_or_else(|| {
                refuse(name, "bad percent-encoding (%XX) or not UTF-8 once decoded")
            })?;
            spec.set(name, &value, limits)?;
        }
        Ok(spec)
    }

    /// Set one argument from its (decoded) text: for a query's arguments, and a route's
    /// defaults in the config.
    pub fn set(&mut self, key: &str, value: &str, limits: &Limits) -> Result<(), ShapeError> {
        if value.is_empty() {
            return Err(refuse(key, "empty value"));
        }
        match key {
            "status" => self.status = Some(status(value, limits)?),
            "delay" => {
                let d = dist(value, limits, &Unit::Time, key)?;
                if d.max() > limits.max_delay_us {
                    let why = format!(
                        "`{value}` is longer than the longest delay allowed, {}",
                        show_us(limits.max_delay_us)
                    );
                    return Err(refuse(key, why));
                }
                self.delay = Some(d);
            }
            "size" => {
                let d = dist(value, limits, &Unit::Bytes, key)?;
                if d.max() > limits.max_size {
                    let why = format!(
                        "`{value}` is larger than the largest body allowed, {} bytes",
                        limits.max_size
                    );
                    return Err(refuse(key, why));
                }
                self.size = Some(d);
            }
            "drip" => self.drip = Some(drip(value, limits)?),
            "close" => self.close = Some(percent(value, key)?),
            "reset" => self.reset = Some(percent(value, key)?),
            "header" => {
                if self.headers.len() >= limits.max_headers {
                    let why = format!("more than {} headers", limits.max_headers);
                    return Err(refuse(key, why));
                }
                self.headers.push(header(value)?);
            }
            "seed" => {
                let not_number = || refuse(key, format!("`{value}` is not a whole number"));
                if !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(not_number());
                }
                let seed = value.parse().map_err(|_| not_number())?;
                self.seed = Some(seed);
            }
            other => return Err(refuse(other, "unknown argument")),
        }
        Ok(())
    }

    /// These defaults with every argument `over` gives in their place (its headers after
    /// these).
    pub fn overlay(&self, over: &Spec) -> Spec {
        let mut headers = self.headers.clone();
        headers.extend(over.headers.iter().cloned());
        Spec {
            status: over.status.clone().or_else(|| self.status.clone()),
            delay: over.delay.clone().or_else(|| self.delay.clone()),
            size: over.size.clone().or_else(|| self.size.clone()),
            drip: over.drip.or(self.drip),
            close: over.close.or(self.close),
            reset: over.reset.or(self.reset),
            headers,
            seed: over.seed.or(self.seed),
        }
    }

    /// Draw one request's shape, in a fixed order (status, delay, size, close, reset), so
    /// that a seeded `rng` gives the same shapes again.
    #[inline(always)]
    pub fn plan(&self, rng: &mut fastrand::Rng, limits: &Limits) -> Plan {
        let roll = |rng: &mut fastrand::Rng, pct: Option<f64>| match pct {
            None => false,
            Some(p) if p <= 0.0 => false,
            Some(p) if p >= 100.0 => true,
            Some(p) => rng.f64() * 100.0 < p,
        };
        let status = self.status.as_ref().and_then(|d| d.sample(rng, 599));
        let delay_us = self
            .delay
            .as_ref()
            .and_then(|d| d.sample(rng, limits.max_delay_us))
            .unwrap_or(0);
        let size = self
            .size
            .as_ref()
            .and_then(|d| d.sample(rng, limits.max_size));
        Plan {
            status: status.map(|s| s as u16),
            delay_us,
            size,
            close: roll(rng, self.close),
            reset: roll(rng, self.reset),
        }
    }
}

/// `%XX`-decode `raw`; `None` if an escape is malformed or the result is not UTF-8.
fn decode(raw: &[u8]) -> Option<Cow<'_, str>> {
    if !raw.contains(&b'%') {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// How the values of a distribution are written.
enum Unit {
    /// Durations, as whole microseconds.
    Time,
    /// Byte counts.
    Bytes,
}

impl Unit {
    fn parse(&self, text: &str, key: &str) -> Result<u64, ShapeError> {
        let (number, unit) = split_number(text)
            .ok_or_else(|| refuse(key, format!("`{text}` does not start with a number")))?;
        let (scale, expect) = match self {
            Unit::Time => (
                match unit {
                    "ns" => 0.001,
                    "us" | "µs" => 1.0,
                    "ms" => 1e3,
                    "s" => 1e6,
                    "m" => 60e6,
                    "" => {
                        let why = format!("`{text}`: missing unit; expected ns, us, ms, s or m");
                        return Err(refuse(key, why));
                    }
                    _ => f64::NAN,
                },
                "ns, us, ms, s or m",
            ),
            Unit::Bytes => (
                match unit {
                    "" | "B" => 1.0,
                    "k" | "K" | "KB" | "kB" => 1e3,
                    "KiB" => 1024.0,
                    "M" | "MB" => 1e6,
                    "MiB" => 1024.0 * 1024.0,
                    "G" | "GB" => 1e9,
                    "GiB" => 1024.0 * 1024.0 * 1024.0,
                    _ => f64::NAN,
                },
                "B, KiB, MiB, GiB, k, M or G",
            ),
        };
        if scale.is_nan() {
            let why = format!("`{text}`: unknown unit `{unit}`; expected {expect}");
            return Err(refuse(key, why));
        }
        if matches!(self, Unit::Bytes) && unit.is_empty() && text.contains('.') {
            let why =
                format!("`{text}`: a fraction of a byte; give a unit (1.5KiB) or whole bytes");
            return Err(refuse(key, why));
        }
        let value = number * scale;
        // 2^63: far past any cap, and exact in f64.
        if value >= 9.2e18 {
            return Err(refuse(key, format!("`{text}` is too large")));
        }
        let whole = value.round() as u64;
        Ok(if whole == 0 && value > 0.0 { 1 } else { whole })
    }

    fn show(&self, value: u64) -> String {
        match self {
            Unit::Time => show_us(value),
            Unit::Bytes => value.to_string(),
        }
    }
}

/// `text`'s leading decimal number (digits, and at most one `.` among them) and what follows.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let end = text
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b == b'.'))
        .unwrap_or(text.len());
    let number = &text[..end];
    if !number.bytes().any(|b| b.is_ascii_digit())
        || number.bytes().filter(|&b| b == b'.').count() > 1
    {
        return None;
    }
    Some((number.parse().ok()?, &text[end..]))
}

/// A number of microseconds as the grammar writes it.
fn show_us(us: u64) -> String {
    format!("{us}us")
}

/// A percentage, 0..=100.
fn percent(text: &str, key: &str) -> Result<f64, ShapeError> {
    match split_number(text) {
        Some((p, "")) if p <= 100.0 => Ok(p),
        Some((p, "")) => Err(refuse(key, format!("{p} is over 100 percent"))),
        _ => Err(refuse(
            key,
            format!("`{text}` is not a percentage (0 to 100)"),
        )),
    }
}

/// A distribution of `unit` values: `v`, `v:pct,...`, `lo..hi`, `p50:a,p99:b`.
fn dist(text: &str, limits: &Limits, unit: &Unit, key: &str) -> Result<Dist, ShapeError> {
    if let Some(rest) = text.strip_prefix("p50:") {
        let (p50, p99) = rest.split_once(",p99:").ok_or_else(|| {
            refuse(
                key,
                format!("`{text}`: a log-normal is written p50:5ms,p99:80ms"),
            )
        })?;
        let (p50, p99) = (unit.parse(p50, key)?, unit.parse(p99, key)?);
        if p50 == 0 || p50 > p99 {
            let why = format!("`{text}`: needs 0 < p50 <= p99");
            return Err(refuse(key, why));
        }
        return Ok(if p50 == p99 {
            Dist::Fixed(p50)
        } else {
            Dist::LogNormal { p50, p99 }
        });
    }
    if let Some((lo, hi)) = text.split_once("..") {
        let (lo, hi) = (unit.parse(lo, key)?, unit.parse(hi, key)?);
        if lo > hi {
            return Err(refuse(key, format!("`{text}`: the range runs backwards")));
        }
        return Ok(Dist::Uniform(lo, hi));
    }
    if !text.contains([':', ',']) {
        return Ok(Dist::Fixed(unit.parse(text, key)?));
    }
    let entries = weighted(text, limits, key, |v| unit.parse(v, key))?;
    Ok(Dist::Weighted(entries))
}

/// fortio's weighted list, `v:pct,...`.
fn weighted(
    text: &str,
    limits: &Limits,
    key: &str,
    value: impl Fn(&str) -> Result<u64, ShapeError>,
) -> Result<SmallVec<[(u64, f64); 4]>, ShapeError> {
    let mut entries = SmallVec::new();
    let mut sum = 0.0;
    for entry in text.split(',') {
        if entries.len() == limits.max_list {
            let why = format!("a list of more than {} entries", limits.max_list);
            return Err(refuse(key, why));
        }
        let (v, pct) = entry.split_once(':').ok_or_else(|| {
            refuse(
                key,
                format!("`{entry}`: each entry of a list is value:percent"),
            )
        })?;
        let pct = percent(pct, key)?;
        sum += pct;
        entries.push((value(v)?, pct));
    }
    if sum > 100.0 + 1e-9 {
        return Err(refuse(
            key,
            format!("percentages add up to {sum}, over 100"),
        ));
    }
    Ok(entries)
}

/// `503` or `503:20,429:5`.
fn status(text: &str, limits: &Limits) -> Result<Dist, ShapeError> {
    let code = |v: &str| match v.parse::<u16>() {
        Ok(c) if (200..=599).contains(&c) => Ok(u64::from(c)),
        _ => Err(refuse(
            "status",
            format!("`{v}` is not a status from 200 to 599"),
        )),
    };
    if !text.contains([':', ',']) {
        return Ok(Dist::Fixed(code(text)?));
    }
    Ok(Dist::Weighted(weighted(text, limits, "status", code)?))
}

/// `10x100ms`.
fn drip(text: &str, limits: &Limits) -> Result<Drip, ShapeError> {
    let form = || refuse("drip", format!("`{text}`: a drip is written 10x100ms"));
    let (pieces, interval) = text.split_once('x').ok_or_else(form)?;
    let pieces: u32 = pieces.parse().map_err(|_| form())?;
    if pieces == 0 || pieces > limits.max_drip_pieces {
        let why = format!(
            "{pieces} pieces; from 1 to {} are allowed",
            limits.max_drip_pieces
        );
        return Err(refuse("drip", why));
    }
    let interval_us = Unit::Time.parse(interval, "drip")?;
    let total = interval_us.checked_mul(u64::from(pieces - 1));
    if total.is_none_or(|t| t > limits.max_delay_us) {
        let why = format!(
            "`{text}` lasts longer than the longest delay allowed, {}",
            show_us(limits.max_delay_us)
        );
        return Err(refuse("drip", why));
    }
    Ok(Drip {
        pieces,
        interval_us,
    })
}

/// `Name:Value`.
fn header(text: &str) -> Result<(String, String), ShapeError> {
    let (name, value) = text.split_once(':').ok_or_else(|| {
        refuse(
            "header",
            format!("`{text}`: a header is written Name:Value"),
        )
    })?;
    if name.is_empty() || !name.bytes().all(crate::http::is_token) {
        return Err(refuse("header", format!("`{name}` is not a header name")));
    }
    let lower = name.to_ascii_lowercase();
    if SERVER_HEADERS.contains(&lower.as_str()) {
        return Err(refuse("header", format!("`{name}` is set by the server")));
    }
    let value = value.trim_matches(' ');
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b >= 0x7f) {
        let why = format!("`{name}`'s value must be visible ASCII, spaces or tabs");
        return Err(refuse("header", why));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Write `value` so that [`decode`] gives it back and it cannot end its argument.
fn encode(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:!$'()*,;/?@".contains(&b) {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut next = |f: &mut fmt::Formatter<'_>, key: &str| -> fmt::Result {
            let s = std::mem::replace(&mut sep, "&");
            write!(f, "{s}{key}=")
        };
        let show = |f: &mut fmt::Formatter<'_>, d: &Dist, unit: &Unit| -> fmt::Result {
            match d {
                Dist::Fixed(v) => write!(f, "{}", unit.show(*v)),
                Dist::Uniform(lo, hi) => write!(f, "{}..{}", unit.show(*lo), unit.show(*hi)),
                Dist::LogNormal { p50, p99 } => {
                    write!(f, "p50:{},p99:{}", unit.show(*p50), unit.show(*p99))
                }
                Dist::Weighted(entries) => {
                    for (i, (v, pct)) in entries.iter().enumerate() {
                        let comma = if i == 0 { "" } else { "," };
                        write!(f, "{comma}{}:{pct}", unit.show(*v))?;
                    }
                    Ok(())
                }
            }
        };
        if let Some(d) = &self.status {
            next(f, "status")?;
            show(f, d, &Unit::Bytes)?;
        }
        if let Some(d) = &self.delay {
            next(f, "delay")?;
            show(f, d, &Unit::Time)?;
        }
        if let Some(d) = &self.size {
            next(f, "size")?;
            show(f, d, &Unit::Bytes)?;
        }
        if let Some(d) = &self.drip {
            next(f, "drip")?;
            write!(f, "{}x{}", d.pieces, show_us(d.interval_us))?;
        }
        if let Some(p) = self.close {
            next(f, "close")?;
            write!(f, "{p}")?;
        }
        if let Some(p) = self.reset {
            next(f, "reset")?;
            write!(f, "{p}")?;
        }
        for (name, value) in &self.headers {
            next(f, "header")?;
            write!(f, "{name}:")?;
            encode(f, value)?;
        }
        if let Some(seed) = self.seed {
            next(f, "seed")?;
            write!(f, "{seed}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
