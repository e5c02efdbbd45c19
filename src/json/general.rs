//! The walk over any body: [`run`], with its fast paths for tokens that fit in a window.

use super::scan::json_string_stops;
use super::{
    after_key, end_of_body, is_whitespace, number_end, pop, push, skip_whitespace, string_end,
    Outer, Stop, EMPTY, WINDOW,
};

/// The grammar from index `i` of `b[..len]`, where a value is expected, inside the containers
/// of `top` (the innermost 63 levels, one bit each, 1 for an object, above a sentinel bit) and
/// `outer` (the rest). `None` when the body is invalid.
///
/// Bytes of `b` past `len` (the tail's padding) must all be NUL. Each token start takes a
/// [`WINDOW`] of bytes; the fast paths handle a token and what follows it inside the window,
/// and hand anything else (whitespace, escapes, long strings, numbers) to checked helpers
/// that work on all of `b`.
pub(super) fn run(
    b: &[u8],
    len: usize,
    mut i: usize,
    mut top: u64,
    outer: &mut Outer,
) -> Option<Stop> {
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
                return end_of_body(b, i, len);
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
