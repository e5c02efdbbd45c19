//! The forms of a request target other than origin-form (RFC 9112 §3.2), and the `uri-host
//! [ ":" port ]` grammar that both an absolute-form authority and the `Host` field must follow
//! (RFC 9110 §4.2.1, §7.2; RFC 3986 §3.2.2).
//!
//! Nearly every request is origin-form (`/path`); the parser sends only the rest here, so none
//! of this is on the hot path except [`is_valid_host`], which every `Host` field passes through.

use std::net::Ipv6Addr;

use super::error::ParseError;
use super::scan::alnum_and;

/// Where the parts of an absolute-form target lie, as offsets into the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Absolute {
    /// The authority (`host[:port]`): `authority_start..path_start`.
    pub(super) authority_start: usize,
    /// Where the path starts (at `/`, `?` or the end: it may be empty).
    pub(super) path_start: usize,
}

/// Check a target `t` that does not start with `/`, sent with `method`.
///
/// `Ok(None)` is asterisk-form (`*`), which only OPTIONS may use (RFC 9112 §3.2.4).
/// `Ok(Some(..))` is absolute-form (§3.2.2) with an `http` or `https` scheme (any case,
/// RFC 9110 §4.2.3): a non-empty host (§4.2.1) and no userinfo (§4.2.4; a sender MUST NOT
/// generate it, so it is most likely a phishing or confusion attempt). Anything else is
/// [`ParseError::InvalidTarget`], including a target in authority-form: only CONNECT uses it
/// (§3.2.3), and the parser refuses CONNECT before the target.
pub(super) fn non_origin(method: &[u8], t: &[u8]) -> Result<Option<Absolute>, ParseError> {
    if t == b"*" {
        return match method {
            b"OPTIONS" => Ok(None),
            _ => Err(ParseError::AsteriskNotOptions),
        };
    }
    let authority_start = if has_prefix_ignore_case(t, b"http://") {
        7
    } else if has_prefix_ignore_case(t, b"https://") {
        8
    } else {
        return Err(ParseError::InvalidTarget);
    };
    let rest = &t[authority_start..];
    let len = rest
        .iter()
        .position(|&c| c == b'/' || c == b'?')
        .unwrap_or(rest.len());
    let authority = &rest[..len];
    let host_empty = authority.is_empty() || authority[0] == b':';
    if host_empty || !is_valid_host(authority) {
        return Err(ParseError::InvalidTarget);
    }
    Ok(Some(Absolute {
        authority_start,
        path_start: authority_start + len,
    }))
}

fn has_prefix_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// `reg-name` characters other than `%` (RFC 3986 §3.2.2): unreserved and sub-delims. An IPv4
/// address is a reg-name too, as far as its characters go.
static REG_NAME: [bool; 256] = alnum_and(b"-._~!$&'()*+,;=");

/// Is `v` a valid `uri-host [ ":" port ]`? The empty value is: a `Host` field is empty when
/// the target URI has no authority (RFC 9112 §3.2). The port is digits only, possibly none.
#[inline]
pub(super) fn is_valid_host(v: &[u8]) -> bool {
    if v.first() == Some(&b'[') {
        return is_valid_ip_literal_host(v);
    }
    let mut i = 0;
    while let Some(&c) = v.get(i) {
        if REG_NAME[c as usize] {
            i += 1;
            continue;
        }
        match c {
            b'%' if is_pct_encoded(&v[i..]) => i += 3,
            b':' => return is_port(&v[i + 1..]),
            _ => return false,
        }
    }
    true
}

/// `%` HEXDIG HEXDIG at the start of `s`.
fn is_pct_encoded(s: &[u8]) -> bool {
    s.get(1..3)
        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
}

fn is_port(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_digit)
}

/// `"[" ( IPv6address / IPvFuture ) "]" [ ":" port ]`.
#[cold]
fn is_valid_ip_literal_host(v: &[u8]) -> bool {
    let Some(close) = v.iter().position(|&c| c == b']') else {
        return false;
    };
    let inner = &v[1..close];
    let literal = match inner.first() {
        Some(b'v' | b'V') => is_ipv_future(&inner[1..]),
        // std's parser takes exactly RFC 4291's text forms (RFC 3986's IPv6address) and
        // allocates nothing.
        _ => std::str::from_utf8(inner).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok()),
    };
    literal
        && match &v[close + 1..] {
            [] => true,
            [b':', port @ ..] => is_port(port),
            _ => false,
        }
}

/// After the `v`: `1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ipv_future(s: &[u8]) -> bool {
    let digits = s.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    match s.get(digits..) {
        Some([b'.', rest @ ..]) if digits > 0 && !rest.is_empty() => {
            rest.iter().all(|&c| c == b':' || (REG_NAME[c as usize]))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_follow_the_uri_host_grammar() {
        let valid: &[&[u8]] = &[
            b"",
            b"x",
            b"a.example:8080",
            b"a:",
            b"127.0.0.1",
            b"0.0.0.0=5000",
            b"a%41b",
            b"[::1]",
            b"[::1]:8000",
            b"[2001:db8::7]:",
            b"[::ffff:192.0.2.1]",
            b"[v1.x:y]",
            b"!$&'()*+,;=-._~",
        ];
        for v in valid {
            assert!(is_valid_host(v), "{:?}", String::from_utf8_lossy(v));
        }
        let invalid: &[&[u8]] = &[
            b"a b",
            b"a/b",
            b"u@a",
            b"a:xyz",
            b"a:80:90",
            b"a\tb",
            b"caf\xc3\xa9",
            b"a%4",
            b"a%zz",
            b"[::1",
            b"[::1]x",
            b"[::1]:8a",
            b"[:::]",
            b"[fe80::1%25eth0]",
            b"[v.x]",
            b"[v1.]",
            b"[1.2.3.4]",
            b"a?b",
            b"a#b",
            b"a[b]",
        ];
        for v in invalid {
            assert!(!is_valid_host(v), "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn absolute_form_needs_an_http_scheme_and_a_host() {
        let abs = |t: &[u8]| non_origin(b"GET", t);
        let at = |authority_start, path_start| {
            Ok(Some(Absolute {
                authority_start,
                path_start,
            }))
        };
        assert_eq!(abs(b"http://x/a"), at(7, 8));
        assert_eq!(abs(b"HTTPS://x:443"), at(8, 13));
        assert_eq!(abs(b"hTtP://x?q"), at(7, 8));
        assert_eq!(abs(b"http://[::1]:80/"), at(7, 15));
        for bad in [
            &b"http://u@x/"[..],
            b"http://u:p@x/",
            b"http:///a",
            b"http://:80/a",
            b"http:/x/a",
            b"http:x",
            b"ftp://x/",
            b"x:80",
            b"admin",
            b"**",
            b"http://x y/",
        ] {
            assert_eq!(
                abs(bad),
                Err(ParseError::InvalidTarget),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn asterisk_form_is_for_options_only() {
        assert_eq!(non_origin(b"OPTIONS", b"*"), Ok(None));
        for method in [&b"GET"[..], b"HEAD", b"POST", b"options"] {
            assert_eq!(
                non_origin(method, b"*"),
                Err(ParseError::AsteriskNotOptions)
            );
        }
    }
}
