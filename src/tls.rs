//! What the HTTPS listener serves with: the rustls [`ServerConfig`] built from `[tls]`, with
//! its certificates read and checked, and the session keys that outlive it.
//!
//! A config is built at start-up, by `--check-config`, and at every reload; the workers take
//! it with the rest of the config, so new handshakes use new certificates at once while
//! established connections go on with the session they have. A pair that cannot serve (a
//! file that does not parse, a key that is not the certificate's, a certificate expired or
//! not yet valid) is an error, and a reload that meets one keeps the old config.
//!
//! [`Keys`] are made once per process and shared by every config and every worker: a
//! session ticket issued by one worker resumes on any other, before and after reloads.
//! The ticket key is replaced every `tls.ticket_key_lifetime` (six hours by default), and
//! the one before kept for tickets already issued.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::{CryptoProvider, GetRandomFailed};
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, TicketRotator};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// TLS 1.2 sessions remembered for resumption by session id, by all workers together
/// (TLS 1.3 resumes by ticket, which needs no memory here).
const SESSION_CACHE: usize = 4096;

/// The session keys every TLS config of the process shares.
pub struct Keys {
    tickets: Arc<dyn ProducesTickets>,
    /// How long each ticket key encrypts (`tls.ticket_key_lifetime`).
    lifetime: Duration,
    sessions: Arc<dyn StoresServerSessions + Send + Sync>,
}

impl Keys {
    /// New ticket keys, rotated every `lifetime`, and an empty session cache.
    pub fn new(lifetime: Duration) -> Result<Keys, String> {
        Ok(Keys {
            tickets: rotated_tickets(lifetime)?,
            lifetime,
            sessions: rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE),
        })
    }

    /// How long each ticket key encrypts.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// These keys' session cache with new ticket keys, rotated every `lifetime`: tickets
    /// issued before no longer resume.
    pub fn with_lifetime(&self, lifetime: Duration) -> Result<Keys, String> {
        Ok(Keys {
            tickets: rotated_tickets(lifetime)?,
            lifetime,
            sessions: self.sessions.clone(),
        })
    }
}

/// Ticket keys that rustls's [`TicketRotator`] replaces every `lifetime`, keeping the one
/// before for tickets it issued. Each key is aws-lc-rs's ticketer (RFC 5077's construction),
/// which rotates on its own only after six hours, the longest `lifetime` allowed.
fn rotated_tickets(lifetime: Duration) -> Result<Arc<dyn ProducesTickets>, String> {
    let secs = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
    let rotator = TicketRotator::new(secs, one_key)
        .map_err(|e| format!("tls: cannot make session ticket keys: {e}"))?;
    Ok(Arc::new(rotator))
}

/// A fresh ticket key, for [`TicketRotator`].
fn one_key() -> Result<Box<dyn ProducesTickets>, GetRandomFailed> {
    let key = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|_| GetRandomFailed)?;
    Ok(Box::new(OneKey(key)))
}

/// aws-lc-rs's ticketer, boxed as [`TicketRotator`] wants it.
#[derive(Debug)]
struct OneKey(Arc<dyn ProducesTickets>);

impl ProducesTickets for OneKey {
    fn enabled(&self) -> bool {
        self.0.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.0.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.0.encrypt(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.0.decrypt(cipher)
    }
}

/// One certificate served, for the expiry metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Its first DNS name (or common name).
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// Its `notAfter`, in seconds since the Unix epoch.
    pub not_after: i64,
}

/// A TLS config ready to serve, and what it serves.
#[derive(Clone)]
pub struct Loaded {
    /// What the workers hand to new connections.
    pub config: Arc<ServerConfig>,
    /// Its certificates, the default one first.
    pub served: Vec<Served>,
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("served", &self.served)
            .finish()
    }
}

/// The provider every config uses: aws-lc-rs (see README, HTTPS, for why).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Read and check `[tls]`'s certificates and build the server config, sharing `keys` (none:
/// only to check the config, without the cost of seeding a random number generator).
pub fn load(tls: &TlsConfig, keys: Option<&Keys>) -> Result<Loaded, String> {
    let provider = provider();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut resolver = ByName::default();
    let mut served = Vec::new();
    for (cert, key) in tls.pairs() {
        let (cert, key) = (&credential(cert)?, &credential(key)?);
        let (certified, names, not_after) = read_pair(cert, key, &provider, now)?;
        let index = resolver.keys.len();
        resolver.keys.push(Arc::new(certified));
        served.push(Served {
            name: names.first().cloned().unwrap_or_default(),
            file: cert.to_owned(),
            not_after,
        });
        resolver
            .names
            .extend(names.into_iter().map(|n| (n.to_ascii_lowercase(), index)));
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if let Some(keys) = keys {
        config.ticketer = keys.tickets.clone();
        config.session_storage = keys.sessions.clone();
    }
    // No 0-RTT: early data can be replayed. (rustls would offer it only in stateful
    // sessions, not with tickets; this keeps it off for both.)
    config.max_early_data_size = 0;
    Ok(Loaded {
        config: Arc::new(config),
        served,
    })
}

/// `path`, with a leading `$CREDENTIALS_DIRECTORY` replaced by where systemd put the
/// service's credentials (`LoadCredential=`), so that the config can name them.
fn credential(path: &Path) -> Result<PathBuf, String> {
    let Ok(rest) = path.strip_prefix("$CREDENTIALS_DIRECTORY") else {
        return Ok(path.to_owned());
    };
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) => Ok(Path::new(&dir).join(rest)),
        None => Err(format!(
            "tls: {} names $CREDENTIALS_DIRECTORY, which is not set (systemd sets it for a \
             service with LoadCredential=)",
            path.display()
        )),
    }
}

/// One pair, checked: the key parses and is the certificate's, and the certificate is valid
/// now. Returns it with the names it holds and its `notAfter`.
fn read_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
    now: i64,
) -> Result<(CertifiedKey, Vec<String>, i64), String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls: certificate {}: {e}", cert.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "tls: certificate {}: no certificate in the file",
            cert.display()
        ));
    };
    let (names, not_before, not_after) =
        describe(leaf).map_err(|e| format!("tls: certificate {}: {e}", cert.display()))?;
    if not_after < now {
        return Err(format!(
            "tls: certificate {} expired {} ago (notAfter {})",
            cert.display(),
            ago(now - not_after),
            httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(not_after as u64))
        ));
    }
    if not_before > now {
        return Err(format!(
            "tls: certificate {} is not valid for another {}",
            cert.display(),
            ago(not_before - now)
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls: key {}: {e}", key.display()))?;
    let certified = CertifiedKey::from_der(chain, private, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "tls: key {} is not the key of certificate {}",
            key.display(),
            cert.display()
        ),
        e => format!("tls: key {}: {e}", key.display()),
    })?;
    Ok((certified, names, not_after))
}

/// A certificate's DNS names (its common name when it has none), `notBefore` and `notAfter`.
fn describe(der: &CertificateDer<'_>) -> Result<(Vec<String>, i64, i64), String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not X.509: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    if names.is_empty() {
        if let Some(cn) = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
        {
            names.push(cn.to_owned());
        }
    }
    let validity = parsed.validity();
    Ok((
        names,
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

/// `3d 4h`, `5h 2m`, `40s`: how long, for a log line.
fn ago(secs: i64) -> String {
    let (d, h, m) = (secs / 86400, secs % 86400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// The certificate a handshake gets: the first one holding the name the client asked for
/// (exactly, or by a `*.` wildcard one label deep) whose key can sign with a scheme the
/// client offers; otherwise the default one, the first.
#[derive(Debug, Default)]
struct ByName {
    keys: Vec<Arc<CertifiedKey>>,
    /// Lowercase names, and the key holding each.
    names: Vec<(String, usize)>,
}

impl ByName {
    fn matches(pattern: &str, name: &str) -> bool {
        match pattern.strip_prefix("*.") {
            Some(parent) => name
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => pattern == name,
        }
    }
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        let named = hello.server_name().map(str::to_ascii_lowercase);
        let candidates = self
            .names
            .iter()
            .filter(|(pattern, _)| named.as_deref().is_some_and(|n| Self::matches(pattern, n)))
            .map(|&(_, i)| i)
            .chain(0..self.keys.len());
        for i in candidates {
            if self.keys[i].key.choose_scheme(schemes).is_some() {
                return Some(self.keys[i].clone());
            }
        }
        self.keys.first().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::{credential, ByName};
    use std::path::Path;

    #[test]
    fn a_path_may_start_at_the_credentials_directory() {
        assert_eq!(
            credential(Path::new("/etc/k.pem")).unwrap(),
            Path::new("/etc/k.pem")
        );
        // The variable is unset in tests (systemd sets it for services).
        if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
            let e = credential(Path::new("$CREDENTIALS_DIRECTORY/k.pem")).unwrap_err();
            assert!(e.contains("LoadCredential="), "{e}");
        }
    }

    #[test]
    fn a_wildcard_matches_one_label() {
        assert!(ByName::matches("*.example.com", "a.example.com"));
        assert!(!ByName::matches("*.example.com", "a.b.example.com"));
        assert!(!ByName::matches("*.example.com", "example.com"));
        assert!(!ByName::matches("*.example.com", ".example.com"));
        assert!(ByName::matches("example.com", "example.com"));
        assert!(!ByName::matches("example.com", "www.example.com"));
    }
}
