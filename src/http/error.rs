//! The parser's error kinds and the status code each one maps to.
//!
//! Errors on the request path are a small `Copy` enum so that a rejection costs nothing but a
//! branch; the server turns one into a response with [`ParseError::status`].

use std::fmt;

labeled_enum! {
    /// Why a request was rejected. Each kind is one rule of RFC 9112 (or a limit of ours).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ParseError {
        /// The method contains a byte that is not a token character, or is empty.
        InvalidMethod => "invalid_method",
        /// The method is a valid token that no HTTP specification defines (501).
        UnknownMethod => "unknown_method",
        /// The target is empty or contains a control character, space, non-ASCII byte or `#`;
        /// or it is in no form we accept (origin, absolute with an `http(s)` scheme, asterisk).
        InvalidTarget => "invalid_target",
        /// `*` as the target of a method other than OPTIONS (RFC 9112 §3.2.4).
        AsteriskNotOptions => "asterisk_not_options",
        /// CONNECT, which only a proxy implements (RFC 9110 §9.3.6); we are an origin server (501).
        ConnectNotSupported => "connect_not_supported",
        /// The request line is longer than [`MAX_REQUEST_LINE`](super::MAX_REQUEST_LINE) (414).
        RequestLineTooLong => "request_line_too_long",
        /// The version is not of the form `HTTP/x.y`.
        InvalidVersion => "invalid_version",
        /// A well-formed `HTTP/x.y` whose major version is not 1 (505).
        UnsupportedVersion => "unsupported_version",
        /// A second `Host` field, on any version (RFC 9112 §3.2).
        DuplicateHost => "duplicate_host",
        /// A `Host` value that is not `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 9110 §7.2).
        InvalidHost => "invalid_host",
        /// A header name is empty or contains a non-token byte.
        InvalidHeaderName => "invalid_header_name",
        /// Whitespace between a header name and its colon (RFC 9112 §5.1).
        WhitespaceBeforeColon => "whitespace_before_colon",
        /// A header line starts with SP or HTAB: obsolete line folding (RFC 9112 §5.2).
        ObsFold => "obs_fold",
        /// A CR that is not followed by LF.
        BareCr => "bare_cr",
        /// An LF that is not preceded by CR.
        BareLf => "bare_lf",
        /// A header value contains a control character other than HTAB.
        InvalidHeaderValue => "invalid_header_value",
        /// The head is larger than [`MAX_HEAD`](super::MAX_HEAD) (431).
        HeadTooLarge => "head_too_large",
        /// More than [`MAX_HEADERS`](super::MAX_HEADERS) header fields (431).
        TooManyHeaders => "too_many_headers",
        /// `Content-Length` is not `1*DIGIT`.
        InvalidContentLength => "invalid_content_length",
        /// `Content-Length` does not fit in a u64.
        ContentLengthOverflow => "content_length_overflow",
        /// Two `Content-Length` fields with different values.
        ConflictingContentLength => "conflicting_content_length",
        /// Both `Transfer-Encoding` and `Content-Length` are present (request smuggling vector).
        TransferEncodingWithContentLength => "transfer_encoding_with_content_length",
        /// The last transfer coding is not `chunked`, so the body length is unknowable.
        ChunkedNotLast => "chunked_not_last",
        /// `chunked` is listed more than once.
        DuplicateChunked => "duplicate_chunked",
        /// A transfer coding other than `chunked` (gzip, deflate, ...) that we do not decode (501).
        UnsupportedTransferCoding => "unsupported_transfer_coding",
        /// A chunk size that is empty or not hexadecimal, or is followed by whitespace.
        InvalidChunkSize => "invalid_chunk_size",
        /// A chunk size that does not fit in a u64.
        ChunkSizeOverflow => "chunk_size_overflow",
        /// A malformed chunk extension (bad token or unterminated quoted string).
        InvalidChunkExtension => "invalid_chunk_extension",
        /// A chunk-size line longer than the decoder's limit.
        ChunkLineTooLong => "chunk_line_too_long",
        /// Chunk data not followed by CRLF.
        MissingChunkCrlf => "missing_chunk_crlf",
        /// The trailer section is larger than the decoder's limit (431).
        TrailersTooLarge => "trailers_too_large",
        /// The body (declared or de-chunked) exceeds the configured maximum (413).
        BodyTooLarge => "body_too_large",
    }
}

impl ParseError {
    /// The response status a server should send for this error.
    pub fn status(self) -> u16 {
        use ParseError::*;
        match self {
            UnknownMethod | ConnectNotSupported | UnsupportedTransferCoding => 501,
            RequestLineTooLong => 414,
            UnsupportedVersion => 505,
            HeadTooLarge | TooManyHeaders | TrailersTooLarge => 431,
            BodyTooLarge => 413,
            _ => 400,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ParseError {}
