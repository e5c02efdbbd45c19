//! An incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! The decoder never copies: it hands back slices of the input it was given. Lines (chunk sizes
//! and trailer fields) are only consumed once complete, so a caller keeps the unconsumed tail of
//! its buffer and calls again when more bytes arrive. Chunk data is consumed as it comes.

use super::error::ParseError;
use super::field::{field_line, FieldLine};
use super::scan::{is_ows, is_token, token_end};

/// Longest chunk-size line, extensions included. Extensions are ignored, so this only needs to
/// fit what real clients send.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Largest trailer section, in bytes.
pub const MAX_TRAILERS: usize = 8 * 1024;

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Body bytes.
    Data(&'a [u8]),
    /// A trailer field (name, value without surrounding whitespace).
    Trailer(&'a [u8], &'a [u8]),
    /// The body is complete, trailers included.
    End,
    /// Nothing more can be decoded until more bytes arrive.
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, with this many bytes still to come.
    Data(u64),
    /// After chunk data, expecting CRLF.
    DataEnd,
    /// After the last chunk, expecting trailer fields or the final CRLF.
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes a chunked body from successive slices of input.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// De-chunked bytes announced so far, checked against `max_body`.
    total: u64,
    /// Largest de-chunked body allowed.
    max_body: u64,
    /// Trailer bytes consumed so far, checked against [`MAX_TRAILERS`].
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder that rejects bodies larger than `max_body` bytes with
    /// [`ParseError::BodyTooLarge`].
    pub fn new(max_body: u64) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            total: 0,
            max_body,
            trailer_bytes: 0,
        }
    }

    /// Has the terminating last chunk and trailer section been decoded?
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode one step from `input`. Returns how many bytes of `input` were used, and what they
    /// were. Call again with the rest of the input (and later, more) until [`Chunk::End`].
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Chunk<'a>), ParseError> {
        match self.state {
            State::Size => self.size_line(input),
            State::Data(remaining) => {
                if input.is_empty() {
                    return Ok((0, Chunk::NeedMore));
                }
                let n = remaining.min(input.len() as u64) as usize;
                self.state = if n as u64 == remaining {
                    State::DataEnd
                } else {
                    State::Data(remaining - n as u64)
                };
                Ok((n, Chunk::Data(&input[..n])))
            }
            State::DataEnd => match input {
                [b'\r', b'\n', ..] => {
                    self.state = State::Size;
                    Ok((2, Chunk::NeedMore))
                }
                [] | [b'\r'] => Ok((0, Chunk::NeedMore)),
                _ => Err(ParseError::MissingChunkCrlf),
            },
            State::Trailers => self.trailer_line(input),
            State::Done => Ok((0, Chunk::End)),
        }
    }

    /// `1*HEXDIG *( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] ) CRLF`
    fn size_line<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Chunk<'a>), ParseError> {
        let line = &input[..input.len().min(MAX_CHUNK_LINE)];
        let mut size: u64 = 0;
        let mut i = 0;
        while let Some(d) = line.get(i).and_then(|&c| (c as char).to_digit(16)) {
            if size >> 60 != 0 {
                return Err(ParseError::ChunkSizeOverflow);
            }
            size = size << 4 | u64::from(d);
            i += 1;
        }
        if i == line.len() {
            return self.need_more(line.len());
        }
        if i == 0 {
            return Err(ParseError::InvalidChunkSize);
        }
        let end = match extensions(line, i)? {
            Some(end) => end,
            None => return self.need_more(line.len()),
        };
        self.total = self.total.saturating_add(size);
        if self.total > self.max_body {
            return Err(ParseError::BodyTooLarge);
        }
        self.state = if size == 0 {
            State::Trailers
        } else {
            State::Data(size)
        };
        Ok((end, Chunk::NeedMore))
    }

    /// Partial line: fine unless it is already as long as a line may be.
    fn need_more<'a>(&self, seen: usize) -> Result<(usize, Chunk<'a>), ParseError> {
        if seen >= MAX_CHUNK_LINE {
            Err(ParseError::ChunkLineTooLong)
        } else {
            Ok((0, Chunk::NeedMore))
        }
    }

    /// A trailer field, or the empty line that ends the body.
    fn trailer_line<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Chunk<'a>), ParseError> {
        let room = MAX_TRAILERS - self.trailer_bytes;
        let line = &input[..input.len().min(room)];
        let partial = || {
            if line.len() == room {
                Err(ParseError::TrailersTooLarge)
            } else {
                Ok((0, Chunk::NeedMore))
            }
        };
        match field_line(line, 0)? {
            FieldLine::End(end) => {
                self.state = State::Done;
                Ok((end, Chunk::End))
            }
            FieldLine::Partial => partial(),
            FieldLine::Field {
                name_end,
                value_start,
                value_end,
                next,
            } => {
                self.trailer_bytes += next;
                let value = &line[value_start..value_end];
                Ok((next, Chunk::Trailer(&line[..name_end], value)))
            }
        }
    }
}

/// Validate chunk extensions starting at `i` (just after the size). Returns the offset after
/// the line's CRLF, or `None` if the line is not complete yet.
fn extensions(line: &[u8], mut i: usize) -> Result<Option<usize>, ParseError> {
    // What a stray byte means: a bad size until the first `;`, a bad extension after it.
    let mut stray = ParseError::InvalidChunkSize;
    loop {
        match line.get(i) {
            None => return Ok(None),
            Some(b'\r') => {
                return match line.get(i + 1) {
                    Some(b'\n') => Ok(Some(i + 2)),
                    Some(_) => Err(ParseError::BareCr),
                    None => Ok(None),
                }
            }
            Some(b'\n') => return Err(ParseError::BareLf),
            Some(b';') => {}
            // Whitespace may precede a `;` (BWS) but never the CRLF.
            Some(b' ' | b'\t') => {
                let ws = skip_ows(line, i);
                match line.get(ws) {
                    None => return Ok(None),
                    Some(b';') => i = ws,
                    Some(_) => return Err(stray),
                }
            }
            Some(_) => return Err(stray),
        }
        stray = ParseError::InvalidChunkExtension;
        i = skip_ows(line, i + 1);
        let n_end = token_end(line, i);
        if n_end == line.len() {
            return Ok(None);
        }
        if n_end == i {
            return Err(ParseError::InvalidChunkExtension);
        }
        i = n_end;
        let eq = skip_ows(line, i);
        match line.get(eq) {
            None => return Ok(None),
            Some(b'=') => {}
            Some(_) => continue,
        }
        i = skip_ows(line, eq + 1);
        match line.get(i) {
            None => return Ok(None),
            Some(b'"') => match quoted_string(line, i + 1)? {
                Some(end) => i = end,
                None => return Ok(None),
            },
            Some(&c) if is_token(c) => i = token_end(line, i),
            Some(_) => return Err(ParseError::InvalidChunkExtension),
        }
    }
}

fn skip_ows(line: &[u8], mut i: usize) -> usize {
    while line.get(i).is_some_and(|&c| is_ows(c)) {
        i += 1;
    }
    i
}

/// Validate a quoted-string whose opening quote is just before `i`; returns the offset after the
/// closing quote.
fn quoted_string(line: &[u8], mut i: usize) -> Result<Option<usize>, ParseError> {
    loop {
        match line.get(i) {
            None => return Ok(None),
            Some(b'"') => return Ok(Some(i + 1)),
            Some(b'\\') => match line.get(i + 1) {
                None => return Ok(None),
                Some(&c) if c == b'\t' || (c >= 0x20 && c != 0x7F) => i += 2,
                Some(_) => return Err(ParseError::InvalidChunkExtension),
            },
            Some(&c) if c == b'\t' || (c >= 0x20 && c != 0x7F) => i += 1,
            Some(_) => return Err(ParseError::InvalidChunkExtension),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Body, trailers and bytes used.
    type Decoded = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>, usize);

    /// Decode `input` fed in pieces of `step` bytes; returns the body and trailers, or the error.
    fn decode_all(input: &[u8], step: usize) -> Result<Decoded, ParseError> {
        let mut d = ChunkedDecoder::new(1 << 20);
        let (mut body, mut trailers) = (Vec::new(), Vec::new());
        let mut pos = 0;
        let mut avail = step.min(input.len());
        loop {
            let (n, chunk) = d.decode(&input[pos..avail])?;
            pos += n;
            match chunk {
                Chunk::Data(data) => body.extend_from_slice(data),
                Chunk::Trailer(name, value) => trailers.push((name.to_vec(), value.to_vec())),
                Chunk::End => return Ok((body, trailers, pos)),
                Chunk::NeedMore if n == 0 => {
                    if avail == input.len() {
                        return Err(ParseError::MissingChunkCrlf); // stands for "incomplete"
                    }
                    avail = (avail + step).min(input.len());
                }
                Chunk::NeedMore => {}
            }
        }
    }

    #[test]
    fn decodes_the_same_at_every_split_step() {
        let input = b"5;a=b;c=\"x;\\\"y\"\r\nhello\r\n6\r\n world\r\n000\r\nX-T: 1 \r\n\r\nNEXT";
        for step in 1..input.len() {
            let (body, trailers, used) = decode_all(input, step).unwrap();
            assert_eq!(body, b"hello world");
            assert_eq!(trailers, vec![(b"X-T".to_vec(), b"1".to_vec())]);
            assert_eq!(&input[used..], b"NEXT");
        }
    }

    #[test]
    fn rejects_malformed_chunks() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"\r\n", ParseError::InvalidChunkSize),
            (b"x\r\n", ParseError::InvalidChunkSize),
            (b"3 \r\nabc\r\n0\r\n\r\n", ParseError::InvalidChunkSize),
            (b"3\nabc", ParseError::BareLf),
            (b"3\r\rabc", ParseError::BareCr),
            (b"3\r\nabcX\r\n", ParseError::MissingChunkCrlf),
            (b"11111111111111111\r\n", ParseError::ChunkSizeOverflow),
            (b"3;\"x\r\n", ParseError::InvalidChunkExtension),
            (b"3;a=\"x\r\n", ParseError::InvalidChunkExtension),
            (b"200000\r\n", ParseError::BodyTooLarge),
            (
                b"0\r\nBad Name: x\r\n\r\n",
                ParseError::WhitespaceBeforeColon,
            ),
            (b"0\r\n x: y\r\n\r\n", ParseError::ObsFold),
        ];
        for (input, want) in cases {
            assert_eq!(
                decode_all(input, input.len()).unwrap_err(),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn limits_line_and_trailer_sizes() {
        let mut long = b"1;".to_vec();
        long.resize(MAX_CHUNK_LINE + 10, b'a');
        assert_eq!(
            decode_all(&long, long.len()).unwrap_err(),
            ParseError::ChunkLineTooLong
        );
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 100 {
            trailers.extend_from_slice(b"X-Pad: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(
            decode_all(&trailers, trailers.len()).unwrap_err(),
            ParseError::TrailersTooLarge
        );
    }
}
