//! Byte classes and the fast scanners the parser is built on.
//!
//! Each scanner returns the index of the first byte that ends its run, so the caller decides
//! whether that byte is a delimiter or an error. They take sixteen bytes per step with SSE2 on
//! x86_64 and eight per step elsewhere (SWAR: "SIMD within a register"); both kinds of step,
//! and the one `unsafe` part (the SSE2 intrinsics), live in `os::simd`. This file is safe code.

#[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
use crate::os::simd::sse2;
use crate::os::simd::{below, equal, word, HIGHS};

/// A byte-class table: ASCII letters and digits, and the bytes of `extra`.
pub(super) const fn alnum_and(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
}

/// `tchar` from RFC 9110 §5.6.2: the characters of methods, header names and codings.
static TOKEN: [bool; 256] = alnum_and(b"!#$%&'*+-.^_`|~");

/// Is `c` a token character?
#[inline]
pub fn is_token(c: u8) -> bool {
    TOKEN[c as usize]
}

/// Index of the first byte at or after `i` that is not a token character, or `buf.len()`.
#[inline]
pub fn token_end(buf: &[u8], mut i: usize) -> usize {
    loop {
        // Letters, digits and `-` (nearly every method and field name) sixteen at a time; the
        // table decides about the rest, one byte at a time.
        #[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
        while let Some(block) = buf.get(i..i + 16) {
            let other = sse2::not_alnum_dash(block.try_into().expect("16 bytes"));
            if other != 0 {
                i += other.trailing_zeros() as usize;
                break;
            }
            i += 16;
        }
        match buf.get(i) {
            Some(&c) if is_token(c) => i += 1,
            _ => return i,
        }
    }
}

/// Index of the first byte at or after `i` that may not appear in a request target, or
/// `buf.len()`. Allowed: visible ASCII (0x21..=0x7E) except `#`.
#[inline]
pub fn target_end(buf: &[u8], mut i: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
    while let Some(block) = buf.get(i..i + 16) {
        let bad = sse2::not_target(block.try_into().expect("16 bytes"));
        if bad != 0 {
            return i + bad.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i + 8 <= buf.len() {
        let x = word(buf, i);
        let bad = below(x, 0x21) | (x & HIGHS) | equal(x, 0x7F) | equal(x, b'#');
        if bad != 0 {
            return i + (bad.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() {
        let c = buf[i];
        if !(0x21..=0x7E).contains(&c) || c == b'#' {
            return i;
        }
        i += 1;
    }
    i
}

/// Index of the first byte at or after `i` that may not appear in a field value, or
/// `buf.len()`. Allowed: HTAB, SP, visible ASCII and obs-text (0x80..=0xFF).
#[inline]
pub fn value_end(buf: &[u8], mut i: usize) -> usize {
    loop {
        i = control_end(buf, i);
        // HTAB is the one control byte allowed inside a value.
        if buf.get(i) != Some(&b'\t') {
            return i;
        }
        i += 1;
    }
}

/// Index of the first control byte (below 0x20, or DEL) at or after `i`, or `buf.len()`.
#[inline]
fn control_end(buf: &[u8], mut i: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
    while let Some(block) = buf.get(i..i + 16) {
        let bad = sse2::control(block.try_into().expect("16 bytes"));
        if bad != 0 {
            return i + bad.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i + 8 <= buf.len() {
        let x = word(buf, i);
        let bad = below(x, 0x20) | equal(x, 0x7F);
        if bad != 0 {
            return i + (bad.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() && buf[i] >= 0x20 && buf[i] != 0x7F {
        i += 1;
    }
    i
}

/// Is `c` optional whitespace (SP or HTAB)?
#[inline]
pub fn is_ows(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// `s` without leading and trailing SP/HTAB.
#[inline]
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_target_end(buf: &[u8], mut i: usize) -> usize {
        while i < buf.len() && (0x21..=0x7E).contains(&buf[i]) && buf[i] != b'#' {
            i += 1;
        }
        i
    }

    fn is_value_char(c: u8) -> bool {
        c == b'\t' || (c >= 0x20 && c != 0x7F)
    }

    fn naive_value_end(buf: &[u8], mut i: usize) -> usize {
        while i < buf.len() && is_value_char(buf[i]) {
            i += 1;
        }
        i
    }

    #[test]
    fn scanners_agree_with_naive_loops_for_every_byte_at_every_offset() {
        for bad in 0..=255u8 {
            for at in 0..40 {
                let mut buf = vec![b'a'; 40];
                buf[at] = bad;
                for start in 0..=at {
                    assert_eq!(
                        target_end(&buf, start),
                        naive_target_end(&buf, start),
                        "target {bad:#x} at {at}"
                    );
                    assert_eq!(
                        value_end(&buf, start),
                        naive_value_end(&buf, start),
                        "value {bad:#x} at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn token_scan_agrees_with_the_table_for_every_byte_at_every_offset() {
        for bad in 0..=255u8 {
            for at in 0..40 {
                let mut buf = b"Content-Length0123456789-abcdefXYZ_.!~|a".to_vec();
                buf[at] = bad;
                for start in 0..=at {
                    let naive = (start..buf.len())
                        .find(|&i| !is_token(buf[i]))
                        .unwrap_or(buf.len());
                    assert_eq!(token_end(&buf, start), naive, "{bad:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn token_table_matches_rfc() {
        let tchars =
            b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        for c in 0..=255u8 {
            assert_eq!(is_token(c), tchars.contains(&c), "{c:#x}");
        }
    }

    #[test]
    fn trim_ows_strips_both_ends_only() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
    }
}
