//! Request bodies as a connection reads them: a chunked body decoded as its bytes arrive
//! ([`ChunkedProgress`]), and, while draining, whether another whole request is already
//! in what was received ([`complete_request_at`]).

use crate::http::{BodyKind, Chunk, ChunkedDecoder, ParseError, RequestParser, Status};

/// A complete body: where the request ends, and the de-chunked body if it was chunked (a
/// Content-Length body is the bytes just before the end).
pub type FoundBody = (usize, Option<Vec<u8>>);

/// A chunked body that is still arriving. Its encoded bytes are decoded as they arrive and
/// then dropped from the connection's buffer, which keeps only the head and what is not
/// decoded yet (at most a chunk-size or trailer line): the framing, however much of it a client
/// sends, never accumulates.
#[derive(Debug)]
pub struct ChunkedProgress {
    decoder: ChunkedDecoder,
    /// The body decoded so far (bounded by `max_body`).
    decoded: Vec<u8>,
    /// Length of the request's head: the encoded body starts there.
    head_len: usize,
    /// Bytes of the encoded body decoded but still in the buffer (dropped after each read).
    offset: usize,
}

impl ChunkedProgress {
    /// Nothing decoded yet of a body of at most `max_body` bytes after a head of `head_len`,
    /// decoding into `buf` (an empty buffer kept for reuse).
    pub fn new(max_body: u64, head_len: usize, buf: Vec<u8>) -> ChunkedProgress {
        ChunkedProgress {
            decoder: ChunkedDecoder::new(max_body),
            decoded: buf,
            head_len,
            offset: 0,
        }
    }

    /// Decode what has arrived of the body of the request at the start of `request` (its head
    /// included). `Some(end)`: the body is complete and the request ends at `end`.
    pub fn decode(&mut self, request: &[u8]) -> Result<Option<usize>, ParseError> {
        let encoded = &request[self.head_len..];
        loop {
            let (used, chunk) = self.decoder.decode(&encoded[self.offset..])?;
            self.offset += used;
            match chunk {
                Chunk::Data(d) => self.decoded.extend_from_slice(d),
                Chunk::Trailer(..) => {}
                Chunk::End => return Ok(Some(self.head_len + self.offset)),
                Chunk::NeedMore if used == 0 => return Ok(None),
                Chunk::NeedMore => {}
            }
        }
    }

    /// The decoded body.
    pub fn into_body(self) -> Vec<u8> {
        self.decoded
    }

    /// The encoded bytes decoded since the last call, as a range of the request, if any: the
    /// caller drops them from its buffer, and decoding goes on from the head's end.
    pub fn take_decoded_range(&mut self) -> Option<(usize, usize)> {
        let start = self.head_len;
        let end = start + std::mem::take(&mut self.offset);
        (end > start).then_some((start, end))
    }
}

/// Does `data` start with a whole request (head and body), or with bytes that are already
/// invalid (which will be answered too)? Used only while draining, so that every request
/// already received is answered before the connection closes.
pub fn complete_request_at(data: &[u8], max_body: u64) -> bool {
    let mut parser = RequestParser::new();
    let (head, head_len) = match parser.parse(data) {
        Status::Partial => return false,
        Status::Error(_) => return true,
        Status::Complete(head, n) => (head, n),
    };
    let body = &data[head_len..];
    match head.body() {
        BodyKind::None => true,
        BodyKind::Length(n) => body.len() as u64 >= n || n > max_body,
        BodyKind::Chunked => {
            let mut decoder = ChunkedDecoder::new(max_body);
            let mut at = 0;
            loop {
                match decoder.decode(&body[at..]) {
                    Err(_) | Ok((_, Chunk::End)) => return true,
                    Ok((0, Chunk::NeedMore)) => return false,
                    Ok((used, _)) => at += used,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_decodes_across_calls_and_gives_back_its_framing() {
        let head = b"POST / HTTP/1.1\r\n\r\n";
        let mut request = head.to_vec();
        request.extend_from_slice(b"3;x=y\r\nabc\r\n");
        let mut progress = ChunkedProgress::new(100, head.len(), Vec::new());
        assert_eq!(progress.decode(&request), Ok(None));
        // The caller drops the decoded framing and keeps the head.
        let (start, end) = progress.take_decoded_range().unwrap();
        request.drain(start..end);
        assert_eq!(request, head);
        request.extend_from_slice(b"0\r\n\r\nNEXT");
        assert_eq!(progress.decode(&request), Ok(Some(head.len() + 5)));
        assert_eq!(progress.into_body(), b"abc");
    }

    #[test]
    fn a_whole_next_request_is_seen_and_a_partial_one_is_not() {
        let max = 1 << 20;
        assert!(complete_request_at(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            max
        ));
        assert!(!complete_request_at(b"GET / HTTP/1.1\r\nHost: a\r\n", max));
        assert!(!complete_request_at(
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
            max
        ));
        assert!(complete_request_at(
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
            max
        ));
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n";
        assert!(complete_request_at(chunked, max));
        assert!(!complete_request_at(&chunked[..chunked.len() - 2], max));
        // Invalid bytes are answered (with an error) too.
        assert!(complete_request_at(b"GET / HTTP/1.1\nHost: a\r\n\r\n", max));
    }
}
