//! HTTP/1.1 wire format: the request parser, the chunked decoder and their error kinds; and
//! the JSON body validator.

mod chunked;
mod error;
mod head;
mod parser;
mod scan;

pub use chunked::{Chunk, ChunkedDecoder, MAX_CHUNK_LINE, MAX_TRAILERS};
pub use error::ParseError;
pub use head::{Field, Head};
pub use parser::{
    BodyKind, Expect, RequestParser, Status, Version, MAX_HEAD, MAX_HEADERS, MAX_REQUEST_LINE,
};
pub use scan::{is_token, trim_ows};

pub mod date;
pub mod json;
pub mod response;
