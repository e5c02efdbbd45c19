//! Drives the request parser and the chunked decoder over arbitrary bytes, the way a server
//! would (head, body, next pipelined head), once whole and once split in two. The first input
//! byte picks the split point. Checks: no panic, limits hold, and both runs agree exactly.

#![no_main]

use cerberus::http::{
    BodyKind, Chunk, ChunkedDecoder, ParseError, RequestParser, Status, MAX_CHUNK_LINE, MAX_HEAD,
    MAX_TRAILERS,
};
use libfuzzer_sys::fuzz_target;

/// Largest de-chunked body the decoder accepts here; small, so the limit gets exercised.
const MAX_BODY: u64 = 1 << 12;

/// Everything observable about one request.
#[derive(Debug, PartialEq, Eq)]
struct Message {
    method: String,
    target: String,
    path: String,
    query: Option<String>,
    version: &'static str,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    framing: BodyKind,
    keep_alive: bool,
    hosts: usize,
    body: Vec<u8>,
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
    complete: bool,
}

enum State {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// A connection: parser, body state, what has been seen so far.
struct Driver {
    parser: RequestParser,
    state: State,
    pos: usize,
    messages: Vec<Message>,
    error: Option<ParseError>,
}

impl Driver {
    fn new() -> Driver {
        Driver {
            parser: RequestParser::new(),
            state: State::Head,
            pos: 0,
            messages: Vec::new(),
            error: None,
        }
    }

    /// Use what can be used of `input` (which extends what the previous call saw).
    fn feed(&mut self, input: &[u8]) {
        while self.error.is_none() {
            let rest = &input[self.pos..];
            match &mut self.state {
                State::Head => match self.parser.parse(rest) {
                    Status::Complete(head, n) => {
                        assert!(n <= MAX_HEAD && n <= rest.len(), "consumed {n}");
                        let framing = head.body();
                        self.messages.push(Message {
                            method: head.method().to_string(),
                            target: head.target().to_string(),
                            path: head.path().to_string(),
                            query: head.query().map(str::to_string),
                            version: head.version().as_str(),
                            fields: head
                                .fields()
                                .map(|f| (f.name.to_vec(), f.value.to_vec()))
                                .collect(),
                            framing,
                            keep_alive: head.keep_alive(),
                            hosts: head.host_count(),
                            body: Vec::new(),
                            trailers: Vec::new(),
                            complete: false,
                        });
                        self.pos += n;
                        self.state = match framing {
                            BodyKind::None => State::Length(0),
                            BodyKind::Length(n) => State::Length(n),
                            BodyKind::Chunked => State::Chunked(ChunkedDecoder::new(MAX_BODY)),
                        };
                    }
                    Status::Partial => {
                        assert!(rest.len() < MAX_HEAD, "Partial with {} bytes", rest.len());
                        return;
                    }
                    Status::Error(e) => self.error = Some(e),
                },
                State::Length(0) => self.finish(),
                State::Length(_) if rest.is_empty() => return,
                State::Length(remaining) => {
                    let n = (*remaining).min(rest.len() as u64) as usize;
                    *remaining -= n as u64;
                    self.last().body.extend_from_slice(&rest[..n]);
                    self.pos += n;
                }
                State::Chunked(decoder) => match decoder.decode(rest) {
                    Err(e) => self.error = Some(e),
                    Ok((used, chunk)) => {
                        assert!(used <= rest.len());
                        self.pos += used;
                        match chunk {
                            Chunk::Data(d) => {
                                assert!(!d.is_empty() && d.len() == used);
                                self.last().body.extend_from_slice(d);
                            }
                            Chunk::Trailer(n, v) => {
                                self.last().trailers.push((n.to_vec(), v.to_vec()))
                            }
                            Chunk::End => self.finish(),
                            Chunk::NeedMore if used == 0 => {
                                let limit = MAX_CHUNK_LINE.max(MAX_TRAILERS);
                                assert!(rest.len() < limit, "NeedMore with {} bytes", rest.len());
                                return;
                            }
                            Chunk::NeedMore => {}
                        }
                    }
                },
            }
        }
    }

    fn last(&mut self) -> &mut Message {
        self.messages.last_mut().expect("a message is open")
    }

    fn finish(&mut self) {
        self.last().complete = true;
        self.state = State::Head;
    }
}

fn run(input: &[u8], split: Option<usize>) -> (Vec<Message>, Option<ParseError>, usize) {
    let mut d = Driver::new();
    if let Some(at) = split {
        d.feed(&input[..at]);
    }
    d.feed(input);
    (d.messages, d.error, d.pos)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let split = input.len() * usize::from(first) / 255;
    let whole = run(input, None);
    let halves = run(input, Some(split));
    assert_eq!(whole, halves, "split at {split}");
});
