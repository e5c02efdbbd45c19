//! The parser's error kinds and the status code each one maps to.
//!
//! Errors on the request path are a small `Copy` enum so that a rejection costs nothing but a
//! branch; the server turns one into a response with [`ParseError::status`].

use std::fmt;

/// Why a request was rejected. Each kind is one rule of RFC 9112 (or a limit of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The method contains a byte that is not a token character, or is empty.
    InvalidMethod,
    /// The method is a valid token that no HTTP specification defines (501).
    UnknownMethod,
    /// The target is empty or contains a control character, space, non-ASCII byte or `#`.
    InvalidTarget,
    /// The request line is longer than [`MAX_REQUEST_LINE`](super::MAX_REQUEST_LINE) (414).
    RequestLineTooLong,
    /// The version is not of the form `HTTP/x.y`.
    InvalidVersion,
    /// A well-formed `HTTP/x.y` other than 1.0 and 1.1 (505).
    UnsupportedVersion,
    /// A header name is empty or contains a non-token byte.
    InvalidHeaderName,
    /// Whitespace between a header name and its colon (RFC 9112 §5.1).
    WhitespaceBeforeColon,
    /// A header line starts with SP or HTAB: obsolete line folding (RFC 9112 §5.2).
    ObsFold,
    /// A CR that is not followed by LF.
    BareCr,
    /// An LF that is not preceded by CR.
    BareLf,
    /// A header value contains a control character other than HTAB.
    InvalidHeaderValue,
    /// The head is larger than [`MAX_HEAD`](super::MAX_HEAD) (431).
    HeadTooLarge,
    /// More than [`MAX_HEADERS`](super::MAX_HEADERS) header fields (431).
    TooManyHeaders,
    /// `Content-Length` is not `1*DIGIT`.
    InvalidContentLength,
    /// `Content-Length` does not fit in a u64.
    ContentLengthOverflow,
    /// Two `Content-Length` fields with different values.
    ConflictingContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` are present (request smuggling vector).
    TransferEncodingWithContentLength,
    /// The last transfer coding is not `chunked`, so the body length is unknowable.
    ChunkedNotLast,
    /// `chunked` is listed more than once.
    DuplicateChunked,
    /// A transfer coding other than `chunked` (gzip, deflate, ...) that we do not decode (501).
    UnsupportedTransferCoding,
    /// A chunk size that is empty or not hexadecimal, or is followed by whitespace.
    InvalidChunkSize,
    /// A chunk size that does not fit in a u64.
    ChunkSizeOverflow,
    /// A malformed chunk extension (bad token or unterminated quoted string).
    InvalidChunkExtension,
    /// A chunk-size line longer than the decoder's limit.
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF.
    MissingChunkCrlf,
    /// The trailer section is larger than the decoder's limit (431).
    TrailersTooLarge,
    /// The body (declared or de-chunked) exceeds the configured maximum (413).
    BodyTooLarge,
}

impl ParseError {
    /// The response status a server should send for this error.
    pub fn status(self) -> u16 {
        use ParseError::*;
        match self {
            UnknownMethod | UnsupportedTransferCoding => 501,
            RequestLineTooLong => 414,
            UnsupportedVersion => 505,
            HeadTooLarge | TooManyHeaders | TrailersTooLarge => 431,
            BodyTooLarge => 413,
            _ => 400,
        }
    }

    /// A short, stable, snake_case name, used in logs and as a metric label.
    pub fn as_str(self) -> &'static str {
        use ParseError::*;
        match self {
            InvalidMethod => "invalid_method",
            UnknownMethod => "unknown_method",
            InvalidTarget => "invalid_target",
            RequestLineTooLong => "request_line_too_long",
            InvalidVersion => "invalid_version",
            UnsupportedVersion => "unsupported_version",
            InvalidHeaderName => "invalid_header_name",
            WhitespaceBeforeColon => "whitespace_before_colon",
            ObsFold => "obs_fold",
            BareCr => "bare_cr",
            BareLf => "bare_lf",
            InvalidHeaderValue => "invalid_header_value",
            HeadTooLarge => "head_too_large",
            TooManyHeaders => "too_many_headers",
            InvalidContentLength => "invalid_content_length",
            ContentLengthOverflow => "content_length_overflow",
            ConflictingContentLength => "conflicting_content_length",
            TransferEncodingWithContentLength => "transfer_encoding_with_content_length",
            ChunkedNotLast => "chunked_not_last",
            DuplicateChunked => "duplicate_chunked",
            UnsupportedTransferCoding => "unsupported_transfer_coding",
            InvalidChunkSize => "invalid_chunk_size",
            ChunkSizeOverflow => "chunk_size_overflow",
            InvalidChunkExtension => "invalid_chunk_extension",
            ChunkLineTooLong => "chunk_line_too_long",
            MissingChunkCrlf => "missing_chunk_crlf",
            TrailersTooLarge => "trailers_too_large",
            BodyTooLarge => "body_too_large",
        }
    }

    /// Every kind, for tests and for pre-registering metric labels.
    pub const ALL: [ParseError; 28] = {
        use ParseError::*;
        [
            InvalidMethod,
            UnknownMethod,
            InvalidTarget,
            RequestLineTooLong,
            InvalidVersion,
            UnsupportedVersion,
            InvalidHeaderName,
            WhitespaceBeforeColon,
            ObsFold,
            BareCr,
            BareLf,
            InvalidHeaderValue,
            HeadTooLarge,
            TooManyHeaders,
            InvalidContentLength,
            ContentLengthOverflow,
            ConflictingContentLength,
            TransferEncodingWithContentLength,
            ChunkedNotLast,
            DuplicateChunked,
            UnsupportedTransferCoding,
            InvalidChunkSize,
            ChunkSizeOverflow,
            InvalidChunkExtension,
            ChunkLineTooLong,
            MissingChunkCrlf,
            TrailersTooLarge,
            BodyTooLarge,
        ]
    };
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ParseError {}
