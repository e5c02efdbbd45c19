//! Probes of the chunked coding (RFC 9112 §7.1): chunk sizes, extensions, the CRLF after
//! data, and trailer sections. Every probe is a `POST /echo` with `Transfer-Encoding: chunked`.

use super::probe::{close, open, Probe};

/// A probe from a kind (`open` or `close`), a name, a chunked body (a string literal, sent
/// after a `POST /echo` head with `Transfer-Encoding: chunked`) and the expected statuses.
macro_rules! p {
    ($kind:ident, $name:literal, $body:literal, $expect:literal) => {
        $kind(
            $name,
            concat!(
                "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                $body
            )
            .as_bytes(),
            $expect,
        )
    };
}

#[rustfmt::skip]
pub const PROBES: &[Probe] = &[
    p!(open, "chunk_one", "5\r\nhello\r\n0\r\n\r\n", "200"),
    p!(open, "chunk_several", "2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n", "200"),
    p!(open, "chunk_empty_body", "0\r\n\r\n", "200"),
    p!(open, "chunk_size_uppercase_hex", "A\r\n0123456789\r\n0\r\n\r\n", "200"),
    p!(open, "chunk_size_lowercase_hex", "a\r\n0123456789\r\n0\r\n\r\n", "200"),
    p!(open, "chunk_size_leading_zeros", "0005\r\nhello\r\n000\r\n\r\n", "200"),
    p!(open, "chunk_data_is_a_request", "23\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n", "200"),
    p!(open, "chunk_data_with_crlf", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "200"),
    // Extensions are ignored (§7.1.1), whatever they say.
    p!(open, "chunk_ext", "5;a=b\r\nhello\r\n0\r\n\r\n", "200"),
    p!(open, "chunk_ext_no_value", "5;a\r\nhello\r\n0;b\r\n\r\n", "200"),
    p!(open, "chunk_ext_quoted", "5;a=\"x;y=z\\\"\"\r\nhello\r\n0\r\n\r\n", "200"),
    p!(open, "chunk_ext_several", "5;a=1;b=2;c\r\nhello\r\n0\r\n\r\n", "200"),
    p!(open, "chunk_ext_bws", "5 ; a = b\r\nhello\r\n0\r\n\r\n", "200"),
    p!(close, "chunk_ext_no_name", "5;=b\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_ext_unterminated_quote", "5;a=\"b\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_ext_bad_char", "5;a@b\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_ext_bare_lf", "5;a=b\nhello\r\n0\r\n\r\n", "400"),
    // Chunk sizes.
    p!(close, "chunk_size_overflow", "10000000000000000\r\nhello\r\n0\r\n\r\n", "400|413"),
    p!(close, "chunk_size_17_f", "FFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n", "400|413"),
    p!(close, "chunk_size_past_max_body", "FFFFFFFF\r\nhello\r\n0\r\n\r\n", "413"),
    p!(close, "chunk_size_hex_prefix", "0x5\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_negative", "-5\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_plus", "+5\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_junk_after", "5x\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_empty", "\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_space_before", " 5\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_space_after", "5 \r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_tab_after", "5\t\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_bare_lf", "5\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_bare_cr", "5\rhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_size_nul", "5\0\r\nhello\r\n0\r\n\r\n", "400"),
    // The CRLF after chunk data.
    p!(close, "chunk_data_longer_than_size", "3\r\nhello\r\n0\r\n\r\n", "400"),
    p!(close, "chunk_data_missing_crlf", "5\r\nhello0\r\n\r\n", "400"),
    p!(close, "chunk_data_bare_lf", "5\r\nhello\n0\r\n\r\n", "400"),
    p!(close, "chunk_data_bare_cr", "5\r\nhello\r0\r\n\r\n", "400"),
    p!(close, "chunk_data_then_space", "5\r\nhello \r\n0\r\n\r\n", "400"),
    // The last chunk and the trailer section (§7.1.2): fields there never frame the message.
    p!(open, "trailer_field", "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", "200"),
    p!(open, "trailer_fields", "0\r\nA: 1\r\nB: 2\r\n\r\n", "200"),
    p!(open, "trailer_content_length_ignored", "0\r\nContent-Length: 40\r\n\r\n", "200"),
    p!(open, "trailer_te_ignored", "0\r\nTransfer-Encoding: chunked\r\n\r\n", "200"),
    p!(open, "trailer_host_ignored", "0\r\nHost: a\r\nHost: b\r\n\r\n", "200"),
    p!(close, "trailer_obs_fold", "0\r\nX-T: 1\r\n 2\r\n\r\n", "400"),
    p!(close, "trailer_bare_lf", "0\r\nX-T: 1\n\r\n", "400"),
    p!(close, "trailer_bare_cr", "0\r\nX-T: 1\r2\r\n\r\n", "400"),
    p!(close, "trailer_nul", "0\r\nX-T: 1\0\r\n\r\n", "400"),
    p!(close, "trailer_no_colon", "0\r\nX-T 1\r\n\r\n", "400"),
    p!(close, "trailer_space_before_colon", "0\r\nX-T : 1\r\n\r\n", "400"),
    p!(close, "last_chunk_bare_lf", "0\n\n", "400"),
    p!(close, "last_chunk_then_bare_lf", "0\r\n\n", "400"),
];
