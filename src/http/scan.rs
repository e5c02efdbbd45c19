//! Byte classes and the fast scanners the parser is built on.
//!
//! The scanners look at eight bytes per step (SWAR: "SIMD within a register") using only safe
//! integer arithmetic. Each returns the index of the first byte that ends the run, so the caller
//! decides whether that byte is a delimiter or an error. The bit tricks flag a byte exactly when it
//! is the *lowest* flagged byte of the word (borrows only propagate upwards, from a byte that
//! really matched), which is the only one we look at.

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

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` that is below `n` (`n <= 0x80`); exact for the lowest one.
#[inline(always)]
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGHS
}

/// High bit set in each byte of `x` equal to `n`; exact for the lowest one.
#[inline(always)]
fn equal(x: u64, n: u8) -> u64 {
    let y = x ^ (ONES * n as u64);
    y.wrapping_sub(ONES) & !y & HIGHS
}

#[inline(always)]
fn word(buf: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[i..i + 8]);
    u64::from_le_bytes(w)
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

/// Index of the first byte at or after `i` that ends a run of plain JSON string content, or
/// `buf.len()`: a quote, a backslash, or a control byte below 0x20 (which a JSON string may
/// not hold unescaped). Everything else, DEL and non-ASCII included, is content.
#[inline(always)]
pub fn json_string_end(buf: &[u8], mut i: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
    while let Some(block) = buf.get(i..i + 16) {
        let stop = sse2::json_string_stop(block.try_into().expect("16 bytes"));
        if stop != 0 {
            return i + stop.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i + 8 <= buf.len() {
        let x = word(buf, i);
        let stop = below(x, 0x20) | equal(x, b'"') | equal(x, b'\\');
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < buf.len() && !is_json_string_stop(buf[i]) {
        i += 1;
    }
    i
}

/// Bit `n` set when byte `n` of `block` ends a run of plain JSON string content (see
/// [`json_string_end`]).
#[inline(always)]
pub fn json_string_stops(block: &[u8; 16]) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
    return sse2::json_string_stop(block);
    #[cfg(not(all(target_arch = "x86_64", not(cerberus_scalar))))]
    block.iter().enumerate().fold(0, |mask, (n, &c)| {
        mask | u32::from(is_json_string_stop(c)) << n
    })
}

/// Is `buf` "plain" JSON text: ASCII without control bytes and without a backslash? In such a
/// body no string needs its escapes or control bytes checked, and no byte needs UTF-8 decoding,
/// so the JSON validator can take a faster walk. Spaces are the only whitespace it can hold.
pub fn is_plain_json(buf: &[u8]) -> bool {
    #[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
    if let Some(last) = buf.last_chunk::<16>() {
        // Blocks of 256 bytes, so that a body that is not plain is given up on early; then
        // what is left, sixteen bytes at a time, the last sixteen overlapping the others.
        let mut blocks = buf.chunks_exact(256);
        for block in &mut blocks {
            let mut flagged = sse2::Flags::new();
            for chunk in block.chunks_exact(16) {
                flagged.add(chunk.try_into().expect("16 bytes"));
            }
            if flagged.any() {
                return false;
            }
        }
        let mut flagged = sse2::Flags::new();
        for chunk in blocks.remainder().chunks_exact(16) {
            flagged.add(chunk.try_into().expect("16 bytes"));
        }
        flagged.add(last);
        return !flagged.any();
    }
    buf.iter().all(|&c| (0x20..0x80).contains(&c) && c != b'\\')
}

/// Bit `n` set when byte `n` of `block` is a double quote.
#[inline(always)]
pub fn quotes(block: &[u8; 16]) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
    return sse2::equal(block, b'"');
    #[cfg(not(all(target_arch = "x86_64", not(cerberus_scalar))))]
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (n, &c)| mask | u32::from(c == b'"') << n)
}

/// Bit `n` set when byte `n` of `block` is an ASCII digit.
#[inline(always)]
pub fn digits(block: &[u8; 16]) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
    return sse2::digit(block);
    #[cfg(not(all(target_arch = "x86_64", not(cerberus_scalar))))]
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (n, &c)| mask | u32::from(c.is_ascii_digit()) << n)
}

/// Does `c` end a run of plain JSON string content (see [`json_string_end`])?
#[inline(always)]
fn is_json_string_stop(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// Sixteen bytes per step with SSE2, which every x86_64 CPU has. Each function returns a mask
/// with bit `n` set when byte `n` of the block is flagged.
#[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8,
        _mm_loadu_si128, _mm_max_epu8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_setzero_si128,
    };

    /// Bytes below 0x20, and DEL.
    #[inline(always)]
    pub fn control(block: &[u8; 16]) -> u32 {
        // SAFETY: SSE2 is in the x86_64 baseline, so the intrinsics are always available;
        // `_mm_loadu_si128` reads exactly the 16 bytes of `block` and has no alignment needs.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            // min(x, 0x1F) == x exactly when x <= 0x1F (unsigned).
            let low = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1F)), x);
            let del = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7F));
            _mm_movemask_epi8(_mm_or_si128(low, del)) as u32
        }
    }

    /// JSON string stops: `"`, `\\` and bytes below 0x20.
    #[inline(always)]
    pub fn json_string_stop(block: &[u8; 16]) -> u32 {
        // SAFETY: as in `control`: baseline SSE2, an unaligned load of exactly 16 bytes.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            let low = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1F)), x);
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            _mm_movemask_epi8(_mm_or_si128(low, _mm_or_si128(quote, backslash))) as u32
        }
    }

    /// Bytes equal to `c`.
    #[inline(always)]
    pub fn equal(block: &[u8; 16], c: u8) -> u32 {
        // SAFETY: as in `control`: baseline SSE2, an unaligned load of exactly 16 bytes.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8))) as u32
        }
    }

    /// ASCII digits.
    #[inline(always)]
    pub fn digit(block: &[u8; 16]) -> u32 {
        // SAFETY: as in `control`: baseline SSE2, an unaligned load of exactly 16 bytes.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            // Adding 0x50 moves b'0'..=b'9' to 0x80..=0x89, the ten smallest signed bytes;
            // nothing else lands there (the addition wraps).
            let moved = _mm_add_epi8(x, _mm_set1_epi8(0x50));
            _mm_movemask_epi8(_mm_cmplt_epi8(moved, _mm_set1_epi8(0x8A_u8 as i8))) as u32
        }
    }

    /// Bytes seen so far that keep a body from being plain JSON (see `is_plain_json`): the
    /// smallest and the largest, and whether there was a backslash.
    pub struct Flags {
        min: __m128i,
        max: __m128i,
        backslash: __m128i,
    }

    impl Flags {
        /// Nothing seen yet.
        #[inline(always)]
        pub fn new() -> Flags {
            // SAFETY: baseline SSE2; no memory is touched.
            unsafe {
                Flags {
                    min: _mm_set1_epi8(-1),
                    max: _mm_setzero_si128(),
                    backslash: _mm_setzero_si128(),
                }
            }
        }

        /// Take in the bytes of `block`.
        #[inline(always)]
        pub fn add(&mut self, block: &[u8; 16]) {
            // SAFETY: as in `control`: baseline SSE2, an unaligned load of exactly 16 bytes.
            unsafe {
                let x = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
                self.min = _mm_min_epu8(self.min, x);
                self.max = _mm_max_epu8(self.max, x);
                let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
                self.backslash = _mm_or_si128(self.backslash, backslash);
            }
        }

        /// Was any byte below 0x20, from 0x80 up, or a backslash?
        #[inline(always)]
        pub fn any(&self) -> bool {
            // SAFETY: baseline SSE2; no memory is touched.
            unsafe {
                // A byte below 0x20 leaves the minimum below 0x20; signed, it compares below
                // 0x20 too. A byte from 0x80 up is negative as a signed byte.
                let low = _mm_cmplt_epi8(self.min, _mm_set1_epi8(0x20));
                let high = _mm_cmplt_epi8(self.max, _mm_setzero_si128());
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(low, high), self.backslash)) != 0
            }
        }
    }

    /// Bytes other than ASCII letters, digits and `-`.
    #[inline(always)]
    pub fn not_alnum_dash(block: &[u8; 16]) -> u32 {
        // SAFETY: as in `control`: baseline SSE2, an unaligned load of exactly 16 bytes.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            // Signed compares: bytes from 0x80 up are negative and so in no range. Setting bit
            // 0x20 folds A..=Z onto a..=z and moves nothing else into it.
            let lower = _mm_or_si128(x, _mm_set1_epi8(0x20));
            let alpha = _mm_and_si128(
                _mm_cmpgt_epi8(lower, _mm_set1_epi8(b'a' as i8 - 1)),
                _mm_cmplt_epi8(lower, _mm_set1_epi8(b'z' as i8 + 1)),
            );
            let digit = _mm_and_si128(
                _mm_cmpgt_epi8(x, _mm_set1_epi8(b'0' as i8 - 1)),
                _mm_cmplt_epi8(x, _mm_set1_epi8(b'9' as i8 + 1)),
            );
            let dash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'-' as i8));
            let ok = _mm_or_si128(alpha, _mm_or_si128(digit, dash));
            !(_mm_movemask_epi8(ok) as u32) & 0xFFFF
        }
    }

    /// Bytes that are not visible ASCII, and `#`.
    #[inline(always)]
    pub fn not_target(block: &[u8; 16]) -> u32 {
        // SAFETY: as in `control`: baseline SSE2, an unaligned load of exactly 16 bytes.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            // As signed bytes, 0x80..=0xFF are negative, so one compare catches them and
            // everything up to SP.
            let low = _mm_cmplt_epi8(x, _mm_set1_epi8(0x21));
            let del = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7F));
            let hash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'#' as i8));
            _mm_movemask_epi8(_mm_or_si128(low, _mm_or_si128(del, hash))) as u32
        }
    }
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
    fn json_string_scan_agrees_with_a_naive_loop_for_every_byte_at_every_offset() {
        for stop in 0..=255u8 {
            for at in 0..40 {
                let mut buf =
                    b"plain text: \x7f and \xc3\xa9 are string content, all of it".to_vec();
                buf.truncate(40);
                buf[at] = stop;
                for start in 0..=at {
                    let naive = (start..buf.len())
                        .find(|&i| is_json_string_stop(buf[i]))
                        .unwrap_or(buf.len());
                    assert_eq!(json_string_end(&buf, start), naive, "{stop:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn plain_json_check_agrees_with_a_naive_loop_for_every_byte_at_every_offset() {
        let is_plain = |c: u8| (0x20..0x80).contains(&c) && c != b'\\';
        // Lengths around the 16-byte steps and the 256-byte blocks.
        for len in [0, 1, 15, 16, 17, 31, 255, 256, 257, 300, 512, 530] {
            let clean = vec![b'a'; len];
            assert!(is_plain_json(&clean), "{len}");
            for at in (0..len).filter(|at| at % 7 == 0 || len - at < 18 || at % 256 < 18) {
                for c in 0..=u8::MAX {
                    let mut buf = clean.clone();
                    buf[at] = c;
                    assert_eq!(is_plain_json(&buf), is_plain(c), "{c:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn quote_and_digit_masks_agree_with_naive_loops() {
        for c in 0..=u8::MAX {
            for at in 0..16 {
                let mut block = *b"xx\"0 9x\"\"12345xy";
                block[at] = c;
                let naive = |f: fn(&u8) -> bool| {
                    (0..16).fold(0, |mask, n| mask | u32::from(f(&block[n])) << n)
                };
                assert_eq!(quotes(&block), naive(|&c| c == b'"'), "{c:#x} at {at}");
                assert_eq!(digits(&block), naive(u8::is_ascii_digit), "{c:#x} at {at}");
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
