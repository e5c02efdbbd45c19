//! The scanners of the JSON validator: where a run of string content ends, whether a body is
//! "plain" (the validator's faster walk), and quote and digit masks. Like `http::scan`, they
//! are safe code built on `os::simd`.

#[cfg(all(target_arch = "x86_64", not(cerberus_scalar)))]
use crate::os::simd::sse2;
use crate::os::simd::{below, equal, word};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
