//! The CPU side of the scanners: sixteen bytes per step with SSE2 (the crate's only `unsafe`
//! outside the system calls), and eight per step with integer arithmetic (SWAR) where SSE2 is
//! not used. `http::scan` and `json::scan` build their scanners from these.
//!
//! The SWAR bit tricks flag a byte exactly when it is the *lowest* flagged byte of the word
//! (borrows only propagate upwards, from a byte that really matched), which is the only one
//! the scanners look at.
//!
//! `RUSTFLAGS="--cfg cerberus_scalar"` turns the SSE2 path off, so the tests can run the
//! portable code on x86_64 too.

pub const ONES: u64 = 0x0101_0101_0101_0101;
pub const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` that is below `n` (`n <= 0x80`); exact for the lowest one.
#[inline(always)]
pub fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGHS
}

/// High bit set in each byte of `x` equal to `n`; exact for the lowest one.
#[inline(always)]
pub fn equal(x: u64, n: u8) -> u64 {
    let y = x ^ (ONES * n as u64);
    y.wrapping_sub(ONES) & !y & HIGHS
}

#[inline(always)]
pub fn word(buf: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Sixteen bytes per step with SSE2, which every x86_64 CPU has. Each function returns a mask
/// with bit `n` set when byte `n` of the block is flagged.
#[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
pub mod sse2 {
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
