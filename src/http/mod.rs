//! HTTP/1.1 wire format: the request parser, the chunked decoder and their error kinds; and
//! the JSON body validator.

mod chunked;
mod error;
mod field;
mod head;
mod parser;
mod scan;
mod target;

pub use chunked::{Chunk, ChunkedDecoder, MAX_CHUNK_LINE, MAX_TRAILERS};
pub use error::ParseError;
pub use head::{BodyKind, Expect, Field, Head, Version, MAX_HEAD, MAX_HEADERS};
pub use parser::{is_head_request, RequestParser, Status, MAX_REQUEST_LINE};
pub use scan::{is_token, trim_ows};

pub mod date;
pub mod response;
