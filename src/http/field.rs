//! The field-line grammar of RFC 9112 §5, shared by the header fields of a head and the
//! trailer fields of a chunked body: `field-name ":" OWS field-value OWS CRLF`, or the empty
//! line that ends the section. Obsolete line folding, whitespace before the colon, bare CR and
//! bare LF are errors (§5.1, §5.2, §2.2).

use super::error::ParseError;
use super::scan::{is_ows, token_end, trim_ows, value_end};

/// One line of a field section, found at an offset of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldLine {
    /// A field. Its name ends at `name_end`; its value, without surrounding whitespace, is
    /// `value_start..value_end`; the next line starts at `next`.
    Field {
        name_end: usize,
        value_start: usize,
        value_end: usize,
        next: usize,
    },
    /// The empty line: the section ends, and what follows starts at this offset.
    End(usize),
    /// The line is not complete yet.
    Partial,
}

/// Parse the line starting at `b[start]`. Incomplete input is [`FieldLine::Partial`], not an
/// error; the caller decides whether it is already too long.
// Inlined into the parser's per-field loop: as a call it cost a tenth more instructions per
// pipelined GET (callgrind, benches/instructions.py).
#[inline(always)]
pub(super) fn field_line(b: &[u8], start: usize) -> Result<FieldLine, ParseError> {
    match b.get(start) {
        None => return Ok(FieldLine::Partial),
        Some(b'\r') => {
            return match b.get(start + 1) {
                Some(b'\n') => Ok(FieldLine::End(start + 2)),
                Some(_) => Err(ParseError::BareCr),
                None => Ok(FieldLine::Partial),
            }
        }
        Some(b'\n') => return Err(ParseError::BareLf),
        Some(b' ' | b'\t') => return Err(ParseError::ObsFold),
        Some(_) => {}
    }
    let name_end = token_end(b, start);
    match b.get(name_end) {
        None => return Ok(FieldLine::Partial),
        Some(b':') if name_end > start => {}
        Some(b' ' | b'\t') if name_end > start => return Err(ParseError::WhitespaceBeforeColon),
        Some(_) => return Err(ParseError::InvalidHeaderName),
    }
    let mut v = name_end + 1;
    while b.get(v).is_some_and(|&c| is_ows(c)) {
        v += 1;
    }
    let v_end = value_end(b, v);
    match (b.get(v_end), b.get(v_end + 1)) {
        (None, _) | (Some(b'\r'), None) => return Ok(FieldLine::Partial),
        (Some(b'\r'), Some(b'\n')) => {}
        (Some(b'\r'), Some(_)) => return Err(ParseError::BareCr),
        (Some(b'\n'), _) => return Err(ParseError::BareLf),
        (Some(_), _) => return Err(ParseError::InvalidHeaderValue),
    }
    Ok(FieldLine::Field {
        name_end,
        value_start: v,
        value_end: v + trim_ows(&b[v..v_end]).len(),
        next: v_end + 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_line_trims_its_value_and_points_past_its_crlf() {
        let line = b"X-A: \t one two \t\r\nNEXT";
        let FieldLine::Field {
            name_end,
            value_start,
            value_end,
            next,
        } = field_line(line, 0).unwrap()
        else {
            panic!("not a field");
        };
        assert_eq!(&line[..name_end], b"X-A");
        assert_eq!(&line[value_start..value_end], b"one two");
        assert_eq!(&line[next..], b"NEXT");
    }

    #[test]
    fn the_empty_line_ends_the_section_and_partial_lines_ask_for_more() {
        assert_eq!(field_line(b"a\r\n\r\nbody", 3), Ok(FieldLine::End(5)));
        for partial in [&b""[..], b"\r", b"Host", b"Host: x", b"Host: x\r"] {
            assert_eq!(
                field_line(partial, 0),
                Ok(FieldLine::Partial),
                "{partial:?}"
            );
        }
    }

    #[test]
    fn malformed_lines_are_named() {
        let cases: &[(&[u8], ParseError)] = &[
            (b" x: y\r\n", ParseError::ObsFold),
            (b"x : y\r\n", ParseError::WhitespaceBeforeColon),
            (b"x\x01: y\r\n", ParseError::InvalidHeaderName),
            (b": y\r\n", ParseError::InvalidHeaderName),
            (b"x: y\rz", ParseError::BareCr),
            (b"x: y\n", ParseError::BareLf),
            (b"\n", ParseError::BareLf),
            (b"\rx", ParseError::BareCr),
            (b"x: a\x00b\r\n", ParseError::InvalidHeaderValue),
        ];
        for (line, want) in cases {
            assert_eq!(field_line(line, 0), Err(*want), "{line:?}");
        }
    }
}
