//! JSON validation: is a body UTF-8 text that follows the JSON grammar of RFC 8259?
//!
//! [`is_valid`] is a pure function of the whole body: no I/O, and no allocation unless the
//! nesting is deeper than [`INLINE_LEVELS`]. It builds no values, so it accepts everything the
//! grammar admits, including what a typed parse may refuse: numbers beyond `f64` (`1E400`),
//! unpaired `\ud800` escapes, and nesting of any depth. It does not recurse; the containers that
//! enclose the current value are a stack of bits (1 for an object), one per level, so memory is
//! bounded by the body's size.
//!
//! Its verdict is exactly serde_json's when deserializing `serde::de::IgnoredAny` from
//! `str::from_utf8(body)`: that pair is the reference the property tests and the fuzz target
//! (`fuzz/fuzz_targets/json.rs`) compare it with, and the server asks serde_json for the line and
//! column of the error once a body is found invalid. What both accept:
//!
//! - whitespace: SP, HTAB, LF and CR, before and after any token, and nothing else (no BOM);
//! - exactly one value, of any kind, at the top;
//! - strings without unescaped control bytes (below 0x20), with the escapes `\" \\ \/ \b \f \n
//!   \r \t` and `\u` followed by four hex digits;
//! - numbers `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`, and `true`, `false`, `null`.
//!
//! # How
//!
//! One walk over the tokens, which never looks at a byte twice except through the 64-byte
//! windows the fast paths read from each token start (so that a short key, its colon and the
//! value after it need no bounds checks). There are two walks with one contract:
//!
//! - `plain` (`plain.rs`) for *plain* bodies, the common compact JSON: a container at the
//!   top, and only ASCII without control bytes or backslashes (one SIMD pass,
//!   `scan::is_plain_json`, finds out). No string in such a body can hold an escape or a byte that
//!   needs decoding, so a string ends at the next quote, and the UTF-8 check is not needed;
//! - `run` (`general.rs`) for everything else: escapes, control bytes, any whitespace,
//!   non-ASCII text, scalars at the top. It is followed by the UTF-8 check (`simdutf8`).
//!
//! Both stop a window's length before the end; the last bytes are walked in a copy padded with
//! NULs, which no token may hold, so a token cut by the padding is found invalid.
//!
//! In `general.rs` and `plain.rs`, the loops are written for the code the compiler makes of
//! them: the slow paths are `#[cold]` functions outside the loop, and a change that looks
//! neutral can cost hundreds of instructions on the benchmark body. Count them with
//! `examples/json_instructions.rs` after any change.

mod general;
mod plain;
mod scan;

use general::run;
use plain::plain;
use scan::{is_plain_json, json_string_end};

/// Nesting levels [`is_valid`] holds without allocating: 63 levels in a register, then 63
/// in each of 16 words on the stack. Deeper documents keep the outer words on the heap,
/// 8 bytes per 63 levels, so at most about `body.len() / 60` bytes.
pub const INLINE_LEVELS: usize = 63 * (1 + INLINE_WORDS);

/// Words of outer levels kept on the stack; see [`INLINE_LEVELS`].
const INLINE_WORDS: usize = 16;

/// Is `body` UTF-8 text that follows the JSON grammar (RFC 8259)? See the module docs.
pub fn is_valid(body: &[u8]) -> bool {
    let mut outer = Outer::new();
    if matches!(body.first(), Some(b'{' | b'[')) && is_plain_json(body) {
        // A plain body is ASCII: there is nothing to decode.
        return walk(body, &mut outer, plain);
    }
    // A byte from 0x80 up outside a string is a grammar error, so checking the whole body
    // as UTF-8 is the same as checking the strings.
    walk(body, &mut outer, run) && simdutf8::basic::from_utf8(body).is_ok()
}

/// Bytes the fast paths may look at from the start of a token without a bounds check: enough
/// for a short key, its colon, and the start of a short value after it.
const WINDOW: usize = 64;

/// How a walk ([`run`] or [`plain()`]) stopped, when the body is not already known to be invalid.
enum Stop {
    Valid,
    /// Fewer than [`WINDOW`] bytes are left from this index, where a value is expected; go on
    /// from there with this innermost nesting word.
    NearEnd(usize, u64),
}

/// A walk over `b[..len]` from index `i`, inside the containers of `top` and the [`Outer`]
/// ones; see [`run`].
type Walk = fn(&[u8], usize, usize, u64, &mut Outer) -> Option<Stop>;

/// The grammar pass: is `body` one JSON value between optional whitespace? Non-ASCII bytes are
/// only looked at as string content.
#[inline(always)]
fn walk(body: &[u8], outer: &mut Outer, walk: Walk) -> bool {
    match walk(body, body.len(), 0, EMPTY, outer) {
        Some(Stop::Valid) => true,
        None => false,
        Some(Stop::NearEnd(i, top)) => {
            // The last bytes, padded with NULs so that every token start still has a whole
            // window. NUL is invalid everywhere, so the padding can only end a token, and
            // the walk never gets past the body's end. The copy has a fixed size (the last
            // window of the body) unless the body is shorter than that.
            let mut tail = [0; 2 * WINDOW];
            let (from, at) = match body.last_chunk::<WINDOW>() {
                Some(last) => {
                    tail[..WINDOW].copy_from_slice(last);
                    (body.len() - WINDOW, WINDOW)
                }
                None => {
                    tail[..body.len()].copy_from_slice(body);
                    (0, body.len())
                }
            };
            matches!(walk(&tail, at, i - from, top, outer), Some(Stop::Valid))
        }
    }
}

/// The innermost nesting word with no level in it: just the sentinel bit.
const EMPTY: u64 = 1;

/// The top value ended before `i`: only whitespace may follow, up to `len`.
fn end_of_body(b: &[u8], i: usize, len: usize) -> Option<Stop> {
    (skip_whitespace(b, i) == len).then_some(Stop::Valid)
}

/// Is `c` whitespace (SP, HTAB, LF, CR)?
#[inline(always)]
fn is_whitespace(c: u8) -> bool {
    c <= b' ' && WHITESPACE & 1 << c != 0
}

/// Whitespace is SP, HTAB, LF and CR: the bits of this mask, indexed by byte.
const WHITESPACE: u64 = 1 << b' ' | 1 << b'\t' | 1 << b'\n' | 1 << b'\r';

/// Index of the first byte at or after `i` that is not whitespace, or `b.len()`.
#[inline(always)]
fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if !is_whitespace(c) {
            break;
        }
        i += 1;
    }
    i
}

/// `i` is at the first non-whitespace byte of an object member: the index after its key and
/// the colon that follows it.
#[inline(always)]
fn after_key(b: &[u8], i: usize) -> Option<usize> {
    if *b.get(i)? != b'"' {
        return None;
    }
    let i = skip_whitespace(b, string_end(b, i + 1)?);
    (*b.get(i)? == b':').then_some(i + 1)
}

/// `i` is just past an opening quote: the index after the closing quote, or `None` when the
/// string holds a control byte or a bad escape, or is not closed.
#[inline(always)]
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i = json_string_end(b, i);
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i = escape_end(b, i + 1)?,
            _ => return None,
        }
    }
}

/// `i` is just past a backslash in a string: the index after the escape.
#[inline(never)]
fn escape_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 1),
        b'u' => {
            let hex = b.get(i + 1..i + 5)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 5)
        }
        _ => None,
    }
}

/// `i` is where a number's digits start (after any minus sign): the index after the number.
/// A digit right after a leading `0` (as in `01`) ends the number here; the caller then
/// rejects that digit, since no value may follow another without a separator.
#[inline(always)]
fn number_end(b: &[u8], i: usize) -> Option<usize> {
    let i = match *b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits_end(b, i + 1),
        _ => return None,
    };
    let i = match b.get(i) {
        Some(b'.') => at_least_one_digit(b, i + 1)?,
        _ => i,
    };
    match b.get(i) {
        Some(b'e' | b'E') => {
            let sign = matches!(b.get(i + 1), Some(b'+' | b'-'));
            at_least_one_digit(b, i + 1 + usize::from(sign))
        }
        _ => Some(i),
    }
}

/// Index of the first byte at or after `i` that is not an ASCII digit, or `b.len()`.
#[inline(always)]
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Like [`digits_end`], but `None` unless there is at least one digit.
#[inline(always)]
fn at_least_one_digit(b: &[u8], i: usize) -> Option<usize> {
    let end = digits_end(b, i);
    (end > i).then_some(end)
}

/// Open a container (an object when `object`) inside those of `top`; the new `top`.
/// Only every 63rd level touches memory.
#[inline(always)]
fn push(top: u64, object: bool, outer: &mut Outer) -> u64 {
    let top = if top >> 63 != 0 { outer.save(top) } else { top };
    top << 1 | u64::from(object)
}

/// Close the innermost container of `top`; the new `top`.
#[inline(always)]
fn pop(top: u64, outer: &mut Outer) -> u64 {
    let top = top >> 1;
    if top == EMPTY {
        return outer.restore();
    }
    top
}

/// The nesting levels outside the innermost 63: whole words of them, as [`run`]'s `top` holds
/// them (63 levels above a sentinel bit).
struct Outer {
    /// How many words are saved, in `inline` and then in `heap`.
    saved: usize,
    /// The first words saved, outermost first.
    inline: [u64; INLINE_WORDS],
    /// Words past `inline`; empty, and so not allocated, for most documents.
    heap: Vec<u64>,
}

impl Outer {
    fn new() -> Outer {
        Outer {
            saved: 0,
            inline: [0; INLINE_WORDS],
            heap: Vec::new(),
        }
    }

    /// Save a full `top`; the empty word that replaces it.
    #[cold]
    fn save(&mut self, top: u64) -> u64 {
        match self.inline.get_mut(self.saved) {
            Some(slot) => *slot = top,
            None => self.heap.push(top),
        }
        self.saved += 1;
        EMPTY
    }

    /// Take back the last word saved, when `top` has emptied; `EMPTY` if there is none.
    #[cold]
    fn restore(&mut self) -> u64 {
        if self.saved == 0 {
            return EMPTY;
        }
        self.saved -= 1;
        match self.heap.pop() {
            Some(word) => word,
            None => self.inline[self.saved],
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
