//! Framing one request: its head (parsed by the worker's parser, or by the connection's own
//! when the head arrived in pieces), the checks the head alone decides, its body by
//! `Content-Length` or chunked (decoded as its bytes arrive, [`ChunkedProgress`]), and the
//! error response that ends a connection on bad input. While draining,
//! [`complete_request_at`] tells whether another whole request is already here.

use super::super::access;
use super::super::ctx::{Ctx, Shared};
use super::super::dispatch::{check_head, dispatch};
use super::reading::{Reader, Reading};
use crate::http::response::{self, ConnectionHeader};
use crate::http::{
    is_head_request, BodyKind, Chunk, ChunkedDecoder, Expect, ParseError, RequestParser, Status,
    Version,
};

impl Reader {
    /// Answer one request at the start of `data`, if it is complete. Returns its length.
    /// On a protocol error, queues the error response, starts closing, and returns `Some`.
    pub(super) fn one(
        &mut self,
        data: &[u8],
        worker_parser: &mut RequestParser,
        shared: &Shared,
        ctx: &mut Ctx,
    ) -> Option<usize> {
        // A head left incomplete goes on in the connection's own parser; a new one starts
        // afresh in the worker's, which carries nothing over from another connection.
        let mut partial = match &mut self.reading {
            Reading::Head { partial } => partial.take(),
            _ => None,
        };
        let parser = match partial.as_deref_mut() {
            Some(own) => own,
            None => {
                worker_parser.reset();
                &mut *worker_parser
            }
        };
        let (head, head_len) = match parser.parse(data) {
            Status::Partial => {
                let own = partial.unwrap_or_else(|| Box::new(worker_parser.clone()));
                self.reading = Reading::Head { partial: Some(own) };
                return None;
            }
            Status::Error(e) => return Some(self.reject(e, data, shared, ctx)),
            Status::Complete(head, n) => (head, n),
        };
        if !check_head(&head, shared, ctx) {
            // Answered already; whatever follows (its body, perhaps) is not read.
            self.reading = Reading::Closing {
                unread: data.len() > head_len,
            };
            return Some(data.len());
        }
        let (body_end, body) = match self.body(data, head_len, head.body(), shared, ctx) {
            Ok(Some(found)) => found,
            Ok(None) => {
                // HTTP/1.0 clients do not know 100 Continue: the expectation is ignored
                // (RFC 9110 §10.1.1).
                let wants_continue =
                    head.expect() == Expect::Continue && head.version() == Version::Http11;
                if let Reading::Body { continue_sent, .. } = &mut self.reading {
                    if wants_continue && !*continue_sent && data.len() == head_len {
                        ctx.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        *continue_sent = true;
                    }
                }
                return None;
            }
            Err(e) => return Some(self.reject(e, data, shared, ctx)),
        };
        self.reading = Reading::Head { partial: None };
        // Only while draining does it matter whether another request is already here.
        let more = ctx.draining && complete_request_at(&data[body_end..], shared.config.max_body);
        let keep = match body {
            None => dispatch(&head, &data[head_len..body_end], more, shared, ctx),
            Some(owned) => {
                let keep = dispatch(&head, &owned, more, shared, ctx);
                ctx.recycle(owned);
                keep
            }
        };
        if !keep {
            self.reading = Reading::Closing { unread: false };
        }
        Some(body_end)
    }

    /// Find the body of the request whose head is `data[..head_len]`. `Ok(None)`: not all
    /// here yet, and the connection is left reading the body.
    fn body(
        &mut self,
        data: &[u8],
        head_len: usize,
        kind: BodyKind,
        shared: &Shared,
        ctx: &mut Ctx,
    ) -> Result<Option<FoundBody>, ParseError> {
        let max = shared.config.max_body;
        let end = match kind {
            BodyKind::None => return Ok(Some((head_len, None))),
            BodyKind::Length(n) if n > max => return Err(ParseError::BodyTooLarge),
            BodyKind::Length(n) => head_len + n as usize,
            BodyKind::Chunked => return self.chunked_body(data, head_len, max, ctx),
        };
        if data.len() >= end {
            return Ok(Some((end, None)));
        }
        if !matches!(self.reading, Reading::Body { .. }) {
            self.reading = Reading::Body {
                continue_sent: false,
                chunked: None,
            };
        }
        Ok(None)
    }

    /// Decode as much of a chunked body as has arrived, going on from the last call.
    fn chunked_body(
        &mut self,
        data: &[u8],
        head_len: usize,
        max: u64,
        ctx: &mut Ctx,
    ) -> Result<Option<FoundBody>, ParseError> {
        let (continue_sent, progress) = match &mut self.reading {
            Reading::Body {
                continue_sent,
                chunked,
            } => (*continue_sent, chunked.take()),
            _ => (false, None),
        };
        let mut progress = progress
            .unwrap_or_else(|| Box::new(ChunkedProgress::new(max, head_len, ctx.scratch())));
        match progress.decode(data)? {
            Some(end) => Ok(Some((end, Some(progress.into_body())))),
            None => {
                self.reading = Reading::Body {
                    continue_sent,
                    chunked: Some(progress),
                };
                Ok(None)
            }
        }
    }

    /// The chunked-body bytes already decoded, as a range of the pending request, if any:
    /// the caller drops them from what it keeps.
    pub(super) fn decoded_framing(&mut self) -> Option<(usize, usize)> {
        match &mut self.reading {
            Reading::Body {
                chunked: Some(progress),
                ..
            } => progress.take_decoded_range(),
            _ => None,
        }
    }

    /// Queue the error response for `e` and stop answering on this connection.
    fn reject(&mut self, e: ParseError, data: &[u8], shared: &Shared, ctx: &mut Ctx) -> usize {
        ctx.stats.parse_error(e);
        // Its duration is recorded by `answer`, like any answered request.
        ctx.stats.request(b"other", e.status());
        let from = ctx.wbuf.len();
        response::write_error(
            &mut ctx.wbuf,
            e.status(),
            ctx.date.get(),
            ConnectionHeader::Close,
            is_head_request(data),
        );
        access::rejected(data, e.status(), from, &shared.config, ctx);
        self.reading = Reading::Closing { unread: true };
        data.len()
    }
}

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
