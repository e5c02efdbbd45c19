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

use super::scan::{digits, is_plain_json, json_string_end, json_string_stops, quotes};

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

/// How a walk ([`run`] or [`plain`]) stopped, when the body is not already known to be invalid.
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

/// The grammar from index `i` of `b[..len]`, where a value is expected, inside the containers
/// of `top` (the innermost 63 levels, one bit each, 1 for an object, above a sentinel bit) and
/// `outer` (the rest). `None` when the body is invalid.
///
/// Bytes of `b` past `len` (the tail's padding) must all be NUL. Each token start takes a
/// [`WINDOW`] of bytes; the fast paths handle a token and what follows it inside the window,
/// and hand anything else (whitespace, escapes, long strings, numbers) to checked helpers
/// that work on all of `b`.
fn run(b: &[u8], len: usize, mut i: usize, mut top: u64, outer: &mut Outer) -> Option<Stop> {
    // Every window ends by `b.len()`: `i <= last` is the only check a window needs.
    let Some(last) = b.len().checked_sub(WINDOW) else {
        return Some(Stop::NearEnd(i, top));
    };
    'value: loop {
        if i > last {
            return Some(Stop::NearEnd(i, top));
        }
        let w = b[i..i + WINDOW].try_into().expect("a window");
        match value(b, i, w, &mut top, outer)? {
            Value::Expected(at) => {
                i = at;
                continue 'value;
            }
            Value::EndsAt(end) => i = end,
            Value::Short(len) => {
                if let Some(next) = next_in_window(w, len, top) {
                    i += next;
                    continue 'value;
                }
                i += len;
            }
        }
        // A value ended at `i`: close containers until a comma asks for the next value. This
        // looks at one byte at a time, so it needs no window, and `run` only ever stops where
        // a value is expected.
        loop {
            if top == EMPTY {
                return (skip_whitespace(b, i) == len).then_some(Stop::Valid);
            }
            let in_object = top & 1 != 0;
            match *b.get(i)? {
                b',' if in_object => {
                    i = match window(b, i).and_then(|w| key_in_window(w, 1)) {
                        Some(end) => i + end,
                        None => after_key(b, skip_whitespace(b, i + 1))?,
                    };
                    continue 'value;
                }
                b',' => {
                    i += 1;
                    continue 'value;
                }
                b'}' if in_object => {}
                b']' if !in_object => {}
                c if is_whitespace(c) => {
                    i = skip_whitespace(b, i);
                    continue;
                }
                _ => return None,
            }
            top = pop(top, outer);
            i += 1;
        }
    }
}

/// The walk over a plain body (see [`is_plain_json`]) that starts with a container: what
/// [`run`] does, in fewer steps, since no string can hold an escape or a control byte. It
/// stops like [`run`], and has the same contract; besides, `top` is [`EMPTY`] only where the
/// walk starts, at the body's first byte, where a container opens.
fn plain(b: &[u8], len: usize, mut i: usize, mut top: u64, outer: &mut Outer) -> Option<Stop> {
    let Some(last) = b.len().checked_sub(WINDOW) else {
        return Some(Stop::NearEnd(i, top));
    };
    'value: loop {
        if i > last {
            return Some(Stop::NearEnd(i, top));
        }
        let w: &[u8; WINDOW] = b[i..i + WINDOW].try_into().expect("a window");
        // A value: the common short ones end inside the window, and so does what follows them
        // up to the next value, nearly always; anything else is left to the loop below.
        i = 'slow: {
            let len = match START[usize::from(w[0])] {
                Start::String => match plain_string(w, 1) {
                    Some(len) => len,
                    None => break 'slow cold_string_end(b, i + 1)?,
                },
                Start::Object => {
                    let first = match plain_key(w, 1) {
                        Some(len) => Ok(i + len),
                        None => cold_object(b, i + 1)?,
                    };
                    match first {
                        Ok(key_end) => {
                            top = push(top, true, outer);
                            i = key_end;
                            continue 'value;
                        }
                        Err(end) if top == EMPTY => return end_of_body(b, end, len),
                        Err(end) => break 'slow end,
                    }
                }
                Start::Array => {
                    let first = match w[1] {
                        b' ' => skip_whitespace(b, i + 1),
                        _ => i + 1,
                    };
                    if *b.get(first)? != b']' {
                        top = push(top, false, outer);
                        i = first;
                        continue 'value;
                    }
                    if top == EMPTY {
                        return end_of_body(b, first + 1, len);
                    }
                    break 'slow first + 1;
                }
                Start::True if w[..4] == *b"true" => 4,
                Start::False if w[..5] == *b"false" => 5,
                Start::Null if w[..4] == *b"null" => 4,
                Start::Digit => match plain_number(w, 0) {
                    Some(len) => len,
                    None => break 'slow cold_number_end(b, i)?,
                },
                Start::Minus if matches!(w[1], b'1'..=b'9') => match plain_number(w, 1) {
                    Some(len) => len,
                    None => break 'slow cold_number_end(b, i + 1)?,
                },
                Start::Minus => break 'slow cold_number_end(b, i + 1)?,
                Start::Zero => break 'slow cold_number_end(b, i)?,
                Start::Space => {
                    i = skip_whitespace(b, i);
                    continue 'value;
                }
                _ => return None,
            };
            // `len` is at most 18, so a comma and a short key fit in the window.
            if w[len] == b',' {
                if top & 1 == 0 {
                    i += len + 1;
                    continue 'value;
                }
                if let Some(key_end) = plain_key(w, len + 1) {
                    i += key_end;
                    continue 'value;
                }
            }
            i + len
        };
        // A value ended at `i`: close containers until a comma asks for the next value.
        loop {
            let c = *b.get(i)?;
            if c == b',' {
                if top & 1 == 0 {
                    i += 1;
                    continue 'value;
                }
                let key = match i <= last {
                    true => plain_key(b[i..i + WINDOW].try_into().expect("a window"), 1),
                    false => None,
                };
                i = match key {
                    Some(len) => i + len,
                    None => cold_after_key(b, i + 1)?,
                };
                continue 'value;
            }
            match c {
                b'}' if top & 1 != 0 => {}
                b']' if top & 1 == 0 => {}
                _ => {
                    i = cold_whitespace_end(b, i)?;
                    continue;
                }
            }
            i += 1;
            top >>= 1;
            if top == EMPTY {
                if outer.saved == 0 {
                    return end_of_body(b, i, len);
                }
                top = outer.restore();
            }
        }
    }
}

/// What a value in a plain body starts with, by its first byte.
#[derive(Clone, Copy)]
enum Start {
    Invalid,
    String,
    Object,
    Array,
    True,
    False,
    Null,
    /// `1` to `9`.
    Digit,
    Zero,
    Minus,
    Space,
}

/// [`Start`] by byte: one load and one jump for every value.
static START: [Start; 256] = {
    let mut table = [Start::Invalid; 256];
    table[b'"' as usize] = Start::String;
    table[b'{' as usize] = Start::Object;
    table[b'[' as usize] = Start::Array;
    table[b't' as usize] = Start::True;
    table[b'f' as usize] = Start::False;
    table[b'n' as usize] = Start::Null;
    let mut digit = b'1';
    while digit <= b'9' {
        table[digit as usize] = Start::Digit;
        digit += 1;
    }
    table[b'0' as usize] = Start::Zero;
    table[b'-' as usize] = Start::Minus;
    table[b' ' as usize] = Start::Space;
    table
};

/// The top value ended before `i`: only whitespace may follow, up to `len`.
fn end_of_body(b: &[u8], i: usize, len: usize) -> Option<Stop> {
    (skip_whitespace(b, i) == len).then_some(Stop::Valid)
}

/// After a value, at `i`: the index past the whitespace there, or `None` if there is none (the
/// byte at `i` cannot follow a value).
#[cold]
#[inline(never)]
fn cold_whitespace_end(b: &[u8], i: usize) -> Option<usize> {
    let end = skip_whitespace(b, i);
    (end > i).then_some(end)
}

/// [`string_end`], kept out of [`plain`]'s loop, which only needs it for long strings.
#[cold]
#[inline(never)]
fn cold_string_end(b: &[u8], i: usize) -> Option<usize> {
    string_end(b, i)
}

/// [`number_end`], kept out of [`plain`]'s loop.
#[cold]
#[inline(never)]
fn cold_number_end(b: &[u8], i: usize) -> Option<usize> {
    number_end(b, i)
}

/// `i` is at the first byte of an object member, perhaps whitespace: [`after_key`], kept out
/// of [`plain`]'s loop.
#[cold]
#[inline(never)]
fn cold_after_key(b: &[u8], i: usize) -> Option<usize> {
    after_key(b, skip_whitespace(b, i))
}

/// `i` is just past an object's `{`: `Ok` with the index after its first key and colon, or
/// `Err` with the index after the `}` of an empty object.
#[cold]
#[inline(never)]
fn cold_object(b: &[u8], i: usize) -> Option<Result<usize, usize>> {
    let first = skip_whitespace(b, i);
    match *b.get(first)? {
        b'}' => Some(Err(first + 1)),
        _ => after_key(b, first).map(Ok),
    }
}

/// A plain string inside the window: `start` is just past the opening quote. The index after
/// the closing quote when it is among the next 16 bytes; otherwise `None`, and the caller uses
/// [`string_end`]. A plain body holds no escape and no control byte, so only the quote counts.
#[inline(always)]
fn plain_string(w: &[u8; WINDOW], start: usize) -> Option<usize> {
    let found = quotes(w[start..start + 16].try_into().expect("16 bytes"));
    (found != 0).then(|| start + found.trailing_zeros() as usize + 1)
}

/// A plain object member start inside the window: a `"` at `quote`, a short key, and a colon
/// right after it. The index after the colon; otherwise `None`, and the caller uses
/// [`after_key`].
#[inline(always)]
fn plain_key(w: &[u8; WINDOW], quote: usize) -> Option<usize> {
    if w[quote] != b'"' {
        return None;
    }
    let end = plain_string(w, quote + 1)?;
    (w[end] == b':').then_some(end + 1)
}

/// A short number inside the window, whose first digit, at `start`, is not `0`: an integer
/// part and an optional fraction, ending within 16 bytes of `start`, and no exponent. Its
/// length; otherwise `None`, and the caller uses [`number_end`], which also finds the invalid
/// ones.
#[inline(always)]
fn plain_number(w: &[u8; WINDOW], start: usize) -> Option<usize> {
    // Bits 16 and up of `other` are set, so every count below is at most 16.
    let other = !digits(w[start..start + 16].try_into().expect("16 bytes"));
    let int = other.trailing_zeros() as usize;
    let mut end = start + int;
    if w[end] == b'.' {
        // The next byte that is not a digit, past the point.
        let fraction_end = (other & (other - 1)).trailing_zeros() as usize;
        if fraction_end == int + 1 {
            return None;
        }
        end = start + fraction_end;
    }
    (end < start + 16 && w[end] | 0x20 != b'e').then_some(end)
}

/// After a short value of `len` bytes, where the next value starts when a comma follows and
/// everything up to that value is in the window: the byte after a value, and the key after a
/// comma in an object, nearly always are, and need no other window.
#[inline(always)]
fn next_in_window(w: &[u8; WINDOW], len: usize, top: u64) -> Option<usize> {
    if w[len] != b',' {
        return None;
    }
    match top & 1 {
        0 => Some(len + 1),
        _ if top == EMPTY => None,
        _ => key_in_window(w, len + 1),
    }
}

/// What [`value`] found.
enum Value {
    /// A whole value of this many bytes, all in the window.
    Short(usize),
    /// A whole value, ending before this index.
    EndsAt(usize),
    /// A value is still expected, at this index: there was whitespace, or a container opened.
    Expected(usize),
}

/// `i` is where a value is expected, `w` the window there; `None` if the body is invalid.
#[inline(always)]
fn value(b: &[u8], i: usize, w: &[u8; WINDOW], top: &mut u64, outer: &mut Outer) -> Option<Value> {
    Some(match w[0] {
        b'"' => match short_string(w, 1) {
            Some(end) => Value::Short(end),
            None => Value::EndsAt(string_end(b, i + 1)?),
        },
        b'{' if w[1] == b'}' => Value::Short(2),
        b'{' => {
            let first = skip_whitespace(b, i + 1);
            if *b.get(first)? == b'}' {
                return Some(Value::EndsAt(first + 1));
            }
            let key_end = match key_in_window(w, 1) {
                Some(end) => i + end,
                None => after_key(b, first)?,
            };
            *top = push(*top, true, outer);
            Value::Expected(key_end)
        }
        b'[' if w[1] == b']' => Value::Short(2),
        b'[' => {
            let first = skip_whitespace(b, i + 1);
            if *b.get(first)? == b']' {
                return Some(Value::EndsAt(first + 1));
            }
            *top = push(*top, false, outer);
            Value::Expected(first)
        }
        b't' if w[..4] == *b"true" => Value::Short(4),
        b'f' if w[..5] == *b"false" => Value::Short(5),
        b'n' if w[..4] == *b"null" => Value::Short(4),
        b'-' | b'0'..=b'9' => match short_number(w) {
            Some(len) => Value::Short(len),
            None if w[0] == b'-' => Value::EndsAt(number_end(b, i + 1)?),
            None => Value::EndsAt(number_end(b, i)?),
        },
        c if is_whitespace(c) => Value::Expected(skip_whitespace(b, i)),
        _ => return None,
    })
}

/// The [`WINDOW`] of bytes from `i`, if there are that many.
#[inline(always)]
fn window(b: &[u8], i: usize) -> Option<&[u8; WINDOW]> {
    b.get(i..)?.first_chunk()
}

/// The common short string, inside the window: `start` is just past the opening quote. The
/// index after the closing quote when it is among the next 16 bytes and nothing before it
/// needs a closer look (an escape, a control byte); otherwise `None`, and the caller uses
/// [`string_end`].
#[inline(always)]
fn short_string(w: &[u8; WINDOW], start: usize) -> Option<usize> {
    let block = w[start..start + 16].try_into().expect("16 bytes");
    let stops = json_string_stops(block);
    let at = start + stops.trailing_zeros() as usize;
    (stops != 0 && w[at] == b'"').then_some(at + 1)
}

/// The common short number, inside the window: an integer part and an optional fraction, each
/// of fewer than 8 digits, and no exponent. Its length; otherwise `None`, and the caller uses
/// [`number_end`], which also finds the invalid ones. (A leading zero ends the number, as it
/// does there: what follows `0` in `01` is then rejected as a value without a separator.)
#[inline(always)]
fn short_number(w: &[u8; WINDOW]) -> Option<usize> {
    let sign = usize::from(w[0] == b'-');
    let int = match w[sign] {
        b'0' => 1,
        _ => digit_run(w, sign),
    };
    let mut end = sign + int;
    if w[end] == b'.' {
        let fraction = digit_run(w, end + 1);
        end += 1 + fraction;
        if fraction == 0 || fraction == 8 {
            return None;
        }
    }
    (int != 0 && int != 8 && w[end] | 0x20 != b'e').then_some(end)
}

/// How many ASCII digits start `w[at..]`, counting up to 8.
#[inline(always)]
fn digit_run(w: &[u8; WINDOW], at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = u64::from_le_bytes(w[at..at + 8].try_into().expect("8 bytes"));
    // A digit is 0x30..=0x39: high nibble 3, and still 3 after adding 6. A carry out of a byte
    // only comes from a byte that is not a digit, so it can only spoil bytes after the first
    // one flagged, which is the only one looked at.
    let (high, three) = (ONES * 0xF0, ONES * 0x30);
    let flagged = ((x & high) ^ three) | ((x.wrapping_add(ONES * 6) & high) ^ three);
    (flagged.trailing_zeros() / 8) as usize
}

/// The common object member start, inside the window: is there a `"` at `quote`, a short key,
/// and a colon right after it? The index after the colon; otherwise `None`, and the caller uses
/// [`after_key`].
#[inline(always)]
fn key_in_window(w: &[u8; WINDOW], quote: usize) -> Option<usize> {
    if w[quote] != b'"' {
        return None;
    }
    let end = short_string(w, quote + 1)?;
    (w[end] == b':').then_some(end + 1)
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
#[path = "json_tests.rs"]
pub(crate) mod tests;
