//! The walk over plain bodies (see [`is_plain_json`](super::is_plain_json)): [`plain`], which
//! needs fewer steps than [`run`](super::run) since no string can hold an escape or a
//! control byte.

use super::scan::{digits, quotes};
use super::{
    after_key, end_of_body, number_end, push, skip_whitespace, string_end, Outer, Stop, EMPTY,
    WINDOW,
};

/// The walk over a plain body (see [`is_plain_json`](super::scan::is_plain_json)) that
/// starts with a container: what [`run`](super::run) does, in fewer steps, since no string can
/// hold an escape or a control byte. It stops like `run`, and has the same contract; besides,
/// `top` is [`EMPTY`] only where the walk starts, at the body's first byte, where a container
/// opens.
pub(super) fn plain(
    b: &[u8],
    len: usize,
    mut i: usize,
    mut top: u64,
    outer: &mut Outer,
) -> Option<Stop> {
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
            // `len` is at most 17, so a comma and a short key after it fit in the window.
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
