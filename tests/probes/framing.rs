//! Probes of body framing: `Content-Length` and `Transfer-Encoding`, alone and together
//! (RFC 9112 §6). Several carry a request for `/smuggled` where a body would be: it must never
//! be answered.

use super::probe::{close, either, open, Probe};

#[rustfmt::skip]
pub const PROBES: &[Probe] = &[
    // Content-Length.
    open("cl_body", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "200"),
    open("cl_zero", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "200"),
    open("cl_on_get", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "200"),
    open("cl_leading_zeros", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello", "200"),
    open("cl_ows", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \t5 \r\n\r\nhello", "200"),
    open(
        "cl_body_is_a_request",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n\r\n\
          GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        "200",
    ),
    // Two equal values, as fields or as a list: RFC 9110 §8.6 allows rejecting or merging.
    either("cl_twice_equal", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "200|400"),
    either("cl_list_equal", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", "200|400"),
    close(
        "cl_twice_differing",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\n\
          helloGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        "400",
    ),
    close("cl_list_differing", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 41\r\n\r\nhelloGET /smuggled HTTP/1.1\r\n\r\n", "400"),
    close("cl_plus_sign", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", "400"),
    close("cl_minus_sign", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello", "400"),
    close("cl_hex", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", "400"),
    close("cl_decimal_point", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5.0\r\n\r\nhello", "400"),
    close("cl_exponent", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5e0\r\n\r\nhello", "400"),
    close("cl_empty", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\nhello", "400"),
    close("cl_space_inside", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1 5\r\n\r\nhello", "400"),
    close("cl_letters", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: five\r\n\r\nhello", "400"),
    close("cl_vertical_tab", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\x0b\r\n\r\nhello", "400"),
    close("cl_nul", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\0\r\n\r\nhello", "400"),
    close("cl_space_before_colon", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", "400"),
    close("cl_obs_fold", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 5\r\n\r\nhello", "400"),
    close("cl_overflow", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\nhello", "400|413"),
    close("cl_u64_max", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\nhello", "413"),
    close("cl_past_max_body", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\nhello", "413"),
    close("cl_http10", b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", "200"),
    // Content-Length and Transfer-Encoding together: either is refused, or TE wins, and the
    // connection closes regardless (RFC 9112 §6.1).
    close(
        "cl_then_te",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
          0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        "200|400",
    ),
    close(
        "te_then_cl",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n\
          0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        "200|400",
    ),
    close("cl_zero_with_te", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "200|400"),
    close("cl_with_te_identity", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello", "400|501"),
    // Transfer-Encoding and its disguises.
    open("te_chunked", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "200"),
    open("te_chunked_on_get", b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "200"),
    open("te_case_insensitive", b"POST /echo HTTP/1.1\r\nHost: x\r\ntransfer-encoding: ChUnKeD\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "200"),
    open("te_trailing_ows", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n", "200"),
    open("te_empty_list_elements", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked,\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "200"),
    close("te_not_chunked", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", "400"),
    close("te_chunk_misspelt", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunk\r\n\r\n0\r\n\r\n", "400"),
    close("te_quoted", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", "400"),
    // `chunked` takes no parameters: refusing is safest, but taking it as chunked frames alike.
    either("te_with_parameter", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", "200|400|501"),
    close("te_empty", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n0\r\n\r\n", "400"),
    close("te_identity", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", "400"),
    close("te_chunked_twice", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "400"),
    close("te_chunked_twice_as_fields", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
    close("te_chunked_not_last", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", "400"),
    close("te_chunked_not_last_as_fields", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", "400"),
    close("te_gzip_then_chunked", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"),
    close("te_gzip_then_chunked_as_fields", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "501"),
    close("te_space_before_colon", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "400"),
    close("te_obs_fold", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "400"),
    close("te_vertical_tab", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n", "400"),
    close("te_nul_in_name", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\0: chunked\r\n\r\n0\r\n\r\n", "400"),
    // Not Transfer-Encoding at all: the would-be chunk is the next request, and "0" is no
    // request line.
    close("te_underscore_is_another_field", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n", "200 400"),
    // HTTP/1.0 with Transfer-Encoding: faulty framing, close after it (RFC 9112 §6.1).
    close(
        "te_http10",
        b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        "200|400",
    ),
];
