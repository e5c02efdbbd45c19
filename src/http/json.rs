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

use super::scan::json_string_end;

/// Nesting levels [`is_valid`] holds without allocating: 63 levels in a register, then 63
/// in each of 16 words on the stack. Deeper documents keep the outer words on the heap,
/// 8 bytes per 63 levels, so at most about `body.len() / 60` bytes.
pub const INLINE_LEVELS: usize = 63 * (1 + INLINE_WORDS);

/// Words of outer levels kept on the stack; see [`INLINE_LEVELS`].
const INLINE_WORDS: usize = 16;

/// Is `body` UTF-8 text that follows the JSON grammar (RFC 8259)? See the module docs.
pub fn is_valid(body: &[u8]) -> bool {
    // A byte from 0x80 up outside a string is a grammar error, so checking the whole body
    // as UTF-8 is the same as checking the strings.
    grammar(body).is_some() && simdutf8::basic::from_utf8(body).is_ok()
}

/// The grammar pass: `Some(())` when `b` is one JSON value between optional whitespace.
/// Non-ASCII bytes are only looked at as string content.
fn grammar(b: &[u8]) -> Option<()> {
    let mut nesting = Nesting::new();
    let mut i = 0;
    'value: loop {
        // A value starts here, after optional whitespace.
        i = skip_whitespace(b, i);
        i = match *b.get(i)? {
            b'"' => string_end(b, i + 1)?,
            b'{' => {
                i = skip_whitespace(b, i + 1);
                if *b.get(i)? == b'}' {
                    i + 1
                } else {
                    nesting.push(true);
                    i = after_key(b, i)?;
                    continue 'value;
                }
            }
            b'[' => {
                i = skip_whitespace(b, i + 1);
                if *b.get(i)? == b']' {
                    i + 1
                } else {
                    nesting.push(false);
                    continue 'value;
                }
            }
            b't' => literal_end(b, i, b"true")?,
            b'f' => literal_end(b, i, b"false")?,
            b'n' => literal_end(b, i, b"null")?,
            b'-' => number_end(b, i + 1)?,
            b'0'..=b'9' => number_end(b, i)?,
            _ => return None,
        };
        // A value ended at `i`: close containers until a comma asks for the next value.
        loop {
            if nesting.is_empty() {
                return (skip_whitespace(b, i) == b.len()).then_some(());
            }
            i = skip_whitespace(b, i);
            match (*b.get(i)?, nesting.in_object()) {
                (b',', true) => {
                    i = after_key(b, skip_whitespace(b, i + 1))?;
                    continue 'value;
                }
                (b',', false) => {
                    i += 1;
                    continue 'value;
                }
                (b'}', true) | (b']', false) => {
                    nesting.pop();
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

/// Whitespace is SP, HTAB, LF and CR: the bits of this mask, indexed by byte.
const WHITESPACE: u64 = 1 << b' ' | 1 << b'\t' | 1 << b'\n' | 1 << b'\r';

/// Index of the first byte at or after `i` that is not whitespace, or `b.len()`.
#[inline(always)]
fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if c > b' ' || WHITESPACE & 1 << c == 0 {
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

/// `i` is at the first byte of `word` (`true`, `false` or `null`): the index after it.
#[inline(always)]
fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    let end = i + word.len();
    (b.get(i..end)? == word).then_some(end)
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

/// The containers that enclose the current value, one bit per level: 1 for an object, 0 for an
/// array. Pushing and popping are a shift; only every 63rd level touches memory.
struct Nesting {
    /// The innermost levels, innermost in bit 0, above a sentinel 1 bit: `1` alone holds none.
    top: u64,
    /// How many full words of outer levels are saved in `inline`, then `heap`.
    saved: usize,
    /// The first outer words, outermost first.
    inline: [u64; INLINE_WORDS],
    /// Outer words past `inline`; empty, and so not allocated, for most documents.
    heap: Vec<u64>,
}

impl Nesting {
    fn new() -> Nesting {
        Nesting {
            top: 1,
            saved: 0,
            inline: [0; INLINE_WORDS],
            heap: Vec::new(),
        }
    }

    /// No container is open.
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.top == 1
    }

    /// The innermost open container is an object (meaningless when none is open).
    #[inline(always)]
    fn in_object(&self) -> bool {
        self.top & 1 != 0
    }

    #[inline(always)]
    fn push(&mut self, object: bool) {
        if self.top >> 63 != 0 {
            self.save_top();
        }
        self.top = self.top << 1 | u64::from(object);
    }

    /// Close the innermost container; there must be one.
    #[inline(always)]
    fn pop(&mut self) {
        self.top >>= 1;
        if self.top == 1 && self.saved != 0 {
            self.restore_top();
        }
    }

    /// `top` is full: save it and start an empty one.
    #[cold]
    fn save_top(&mut self) {
        match self.inline.get_mut(self.saved) {
            Some(slot) => *slot = self.top,
            None => self.heap.push(self.top),
        }
        self.saved += 1;
        self.top = 1;
    }

    /// `top` is empty: take back the last word saved.
    #[cold]
    fn restore_top(&mut self) {
        self.saved -= 1;
        self.top = match self.heap.pop() {
            Some(word) => word,
            None => self.inline[self.saved],
        };
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
pub(crate) mod tests;
