//! Probes of the request line (method, target, version) and of `Host`.
//!
//! Among them: an absolute-form target is routed on its path, `Host` values are validated,
//! asterisk-form is only for OPTIONS, and `HTTP/1.x` with x > 1 is served as 1.1.

use super::probe::{close, either, open, Probe};
use crate::common::Response;

/// A 204 or 304 response has no `Content-Length` (RFC 9110 §8.6: a 204 MUST NOT; a 304 may
/// only repeat the length the 200 would have had, which a static route cannot know).
fn no_content_length(res: &Response) -> Result<(), String> {
    match res.header("Content-Length") {
        None => Ok(()),
        Some(n) => Err(format!("Content-Length: {n} on a {}", res.status)),
    }
}

/// The `inspect` handler saw the path `/inspect` and no query.
fn inspected_path(res: &Response) -> Result<(), String> {
    let doc: serde_json::Value = serde_json::from_slice(&res.body)
        .map_err(|e| format!("not JSON ({e}): {:?}", String::from_utf8_lossy(&res.body)))?;
    match (&doc["path"], &doc["query"]) {
        (serde_json::Value::String(p), serde_json::Value::Null) if p == "/inspect" => Ok(()),
        (path, query) => Err(format!("path {path}, query {query}")),
    }
}

/// The `inspect` handler saw the path `/inspect` and, as the host, the authority `a:81` of the
/// absolute-form target, not the `Host` field (RFC 9112 §3.2.2).
fn inspected_authority(res: &Response) -> Result<(), String> {
    let doc: serde_json::Value = serde_json::from_slice(&res.body)
        .map_err(|e| format!("not JSON ({e}): {:?}", String::from_utf8_lossy(&res.body)))?;
    match (&doc["path"], &doc["host"]) {
        (serde_json::Value::String(p), serde_json::Value::String(h))
            if p == "/inspect" && h == "a:81" =>
        {
            Ok(())
        }
        (path, host) => Err(format!("path {path}, host {host}")),
    }
}

/// `OPTIONS *` is answered 200 with an `Allow` header and no content (RFC 9110 §9.3.7: the
/// server's capabilities, not a resource's), never with the default response's body.
fn allow_and_no_body(res: &Response) -> Result<(), String> {
    match (res.header("Allow"), res.body.is_empty()) {
        (Some(allow), true) if allow.contains("GET") => Ok(()),
        _ => Err(format!(
            "want Allow (with GET) and no body: {:?}",
            res.normalized()
        )),
    }
}

#[rustfmt::skip]
pub const PROBES: &[Probe] = &[
    // The request line.
    open("get_plain", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
    open("leading_empty_line", b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
    close("leading_bare_lf", b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("double_space_after_method", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("double_space_before_version", b"GET /  HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("trailing_space_after_version", b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", "400"),
    close("tab_as_separator", b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("leading_space", b" GET / HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("http09_no_version", b"GET /\r\n\r\n", "400"),
    close("request_line_bare_lf", b"GET / HTTP/1.1\nHost: x\r\n\r\n", "400"),
    close("request_line_bare_cr", b"GET / HTTP/1.1\rHost: x\r\n\r\n", "400"),
    close("request_line_too_long", LONG_TARGET, "414"),
    // Methods: case-sensitive tokens; unknown ones are 501 (RFC 9110 §9.1).
    close("method_lowercase", b"get / HTTP/1.1\r\nHost: x\r\n\r\n", "501"),
    close("method_unknown", b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", "501"),
    close("method_empty", b" / HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("method_separator_char", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("method_nul", b"GE\0T / HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("method_non_ascii", b"G\xc9T / HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    open("method_delete", b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
    open("method_head_has_no_body", b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
    // An error response to HEAD has no content either (RFC 9110 §9.3.2).
    close("method_head_rejected_has_no_body", b"HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", "400"),
    // CONNECT to an origin server that is no proxy: a 2xx would mean "tunnel from here on"
    // (RFC 9110 §9.3.6), so it must be refused.
    close("connect_authority_form", b"CONNECT x:80 HTTP/1.1\r\nHost: x:80\r\n\r\n", "400|405|501"),
    close("connect_origin_form", b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", "400|405|501"),
    // Bytes right after a CONNECT may be the tunnel's: never read as a request.
    close("connect_then_request", b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "400|405|501"),
    // Responses without content (the routes of `probe::CONFIG`).
    open("status_204_no_content_length", b"GET /no-content HTTP/1.1\r\nHost: x\r\n\r\n", "204").check(no_content_length),
    open("status_304_no_content_length", b"GET /not-modified HTTP/1.1\r\nHost: x\r\n\r\n", "304").check(no_content_length),
    open("status_204_head_no_content_length", b"HEAD /no-content HTTP/1.1\r\nHost: x\r\n\r\n", "204").check(no_content_length),
    open("status_204_304_pipelined", b"GET /no-content HTTP/1.1\r\nHost: x\r\n\r\nGET /not-modified HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "204 304 200"),
    // Versions (RFC 9112 §2.3): a higher 1.x is 1.1; other majors 505; anything else 400.
    open("version_1_2_is_1_1", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", "200"),
    open("version_1_9_is_1_1", b"GET / HTTP/1.9\r\nHost: x\r\n\r\n", "200"),
    close("version_1_2_without_host", b"GET / HTTP/1.2\r\n\r\n", "400"),
    close("version_2_0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"),
    close("version_3_0", b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", "505"),
    close("version_0_9", b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", "505"),
    close("version_lowercase", b"GET / http/1.1\r\nHost: x\r\n\r\n", "400"),
    close("version_two_minor_digits", b"GET / HTTP/1.10\r\nHost: x\r\n\r\n", "400"),
    close("version_no_minor", b"GET / HTTP/1\r\nHost: x\r\n\r\n", "400"),
    close("version_no_dot", b"GET / HTTP/11\r\nHost: x\r\n\r\n", "400"),
    close("version_space_after_slash", b"GET / HTTP/ 1.1\r\nHost: x\r\n\r\n", "400"),
    close("version_letter_minor", b"GET / HTTP/1.x\r\nHost: x\r\n\r\n", "400"),
    close("version_prefix_junk", b"GET / XHTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("version_http10_no_keep_alive", b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", "200"),
    open("version_http10_keep_alive", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "200"),
    // Targets.
    close("target_nul", b"GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("target_non_ascii", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("target_del", b"GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("target_fragment", b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("target_tab_inside", b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    // Neither origin-form (no leading `/`) nor absolute-form (no scheme): RFC 9112 §3.2.
    close("target_no_slash", b"GET admin HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    open("target_admin_origin_form", b"GET /admin/x HTTP/1.1\r\nHost: x\r\n\r\n", "403"),
    open("absolute_form_routes_on_path", b"GET http://x/admin/x HTTP/1.1\r\nHost: x\r\n\r\n", "403"),
    open("absolute_form_scheme_case", b"GET HTTP://X/admin HTTP/1.1\r\nHost: x\r\n\r\n", "403"),
    open("absolute_form_with_query", b"GET http://x/admin?a=b HTTP/1.1\r\nHost: x\r\n\r\n", "403"),
    open("absolute_form_with_port", b"GET http://x:8000/admin HTTP/1.1\r\nHost: x\r\n\r\n", "403"),
    open("origin_form_inspect_path", b"GET /inspect HTTP/1.1\r\nHost: x\r\n\r\n", "200").check(inspected_path),
    open("absolute_form_inspect_path", b"GET http://x/inspect HTTP/1.1\r\nHost: x\r\n\r\n", "200").check(inspected_path),
    open("absolute_form_https", b"GET https://x/admin HTTP/1.1\r\nHost: x\r\n\r\n", "403"),
    open("absolute_form_host_is_authority", b"GET http://a:81/inspect HTTP/1.1\r\nHost: b\r\n\r\n", "200").check(inspected_authority),
    close("absolute_form_other_scheme", b"GET ftp://x/admin HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("absolute_form_no_slashes", b"GET http:x/admin HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    // RFC 9110 §4.2.1: an http URI with an empty host is invalid.
    close("absolute_form_empty_host", b"GET http:///admin HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("absolute_form_bad_port", b"GET http://x:8a/admin HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("authority_form_with_get", b"GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    // RFC 9110 §4.2.4: userinfo in an http URI is an error.
    close("absolute_form_userinfo", b"GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    // The authority of an absolute-form target replaces Host (RFC 9112 §3.2.2).
    open("absolute_form_other_host", b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", "200"),
    open("absolute_form_empty_path", b"GET http://x HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
    close("absolute_form_without_host", b"GET http://x/ HTTP/1.1\r\n\r\n", "400"),
    // Asterisk-form is for OPTIONS only (RFC 9112 §3.2.4).
    close("asterisk_get", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("asterisk_post", b"POST * HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "400"),
    close("asterisk_head", b"HEAD * HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("asterisk_options_without_host", b"OPTIONS * HTTP/1.1\r\n\r\n", "400"),
    open("asterisk_options_http10", b"OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "200").check(allow_and_no_body),
    open("asterisk_options", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "200").check(allow_and_no_body),
    // Host (RFC 9112 §3.2): exactly one on 1.1, at most one on 1.0, and a valid uri-host.
    close("host_missing", b"GET / HTTP/1.1\r\n\r\n", "400"),
    close("host_twice", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "400"),
    close("host_twice_differing", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
    close("host_twice_http10", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
    close("host_space_inside", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "400"),
    close("host_slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "400"),
    close("host_userinfo", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", "400"),
    close("host_port_letters", b"GET / HTTP/1.1\r\nHost: a:xyz\r\n\r\n", "400"),
    close("host_tab_inside", b"GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", "400"),
    close("host_unclosed_ipv6", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "400"),
    close("host_invalid_http10", b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n", "400"),
    close("host_non_ascii", b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", "400"),
    // A rejected HEAD gets no content either (RFC 9110 §9.3.2): it would read as a response.
    close("host_invalid_on_head", b"HEAD / HTTP/1.1\r\nHost: a b\r\n\r\n", "400"),
    close("host_two_ports", b"GET / HTTP/1.1\r\nHost: a:80:90\r\n\r\n", "400"),
    close("host_name_space_colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "400"),
    open("host_empty", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", "200"),
    open("host_with_port", b"GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", "200"),
    open("host_ipv6_literal", b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n", "200"),
    open("host_ipv4", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "200"),
    open("host_empty_port", b"GET / HTTP/1.1\r\nHost: a:\r\n\r\n", "200"),
    open("host_trailing_ows", b"GET / HTTP/1.1\r\nHost: \ta \t\r\n\r\n", "200"),
    open("host_lowercase_name", b"GET / HTTP/1.1\r\nhOST: a\r\n\r\n", "200"),
    close("host_http10_none", b"GET / HTTP/1.0\r\n\r\n", "200"),
    either("host_pct_encoded", b"GET / HTTP/1.1\r\nHost: a%41\r\n\r\n", "200|400"),
];

/// A request line of 9,000 bytes: past the 8 KiB limit.
const LONG_TARGET: &[u8] = {
    const N: usize = 9000;
    const fn build() -> [u8; N] {
        let mut b = [b'a'; N];
        let head = b"GET /";
        let mut i = 0;
        while i < head.len() {
            b[i] = head[i];
            i += 1;
        }
        b
    }
    &build()
};
