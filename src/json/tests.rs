//! Tests of [`is_valid`](super::is_valid): edge cases by name, each checked against serde_json
//! too, and property tests against serde_json on generated JSON, near-JSON and mutations.
//! The generators are shared with the tests of the server's JSON check.

use super::*;
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The reference verdict: UTF-8, then serde_json's grammar pass (`IgnoredAny`).
pub(crate) fn reference(body: &[u8]) -> bool {
    std::str::from_utf8(body)
        .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
}

/// Each case becomes a named test that checks both the validator and the reference.
macro_rules! verdicts {
    ($($name:ident: $body:expr => $valid:expr,)*) => {
        $(
            #[test]
            fn $name() {
                let body: &[u8] = $body.as_ref();
                assert_eq!(reference(body), $valid, "serde_json on {:?}", body.escape_ascii());
                assert_eq!(is_valid(body), $valid, "is_valid on {:?}", body.escape_ascii());
                for wrapped in inside_longer_bodies(body) {
                    let valid = reference(&wrapped);
                    let shown = wrapped.escape_ascii();
                    assert_eq!(is_valid(&wrapped), valid, "is_valid on {shown:?}");
                }
            }
        )*
    };
}

/// `body` as an element of arrays longer than a [`WINDOW`]: first, last, and after whitespace
/// (which keeps the body off the walk for plain bodies). Short cases are otherwise only ever
/// checked by the walk over the padded tail.
fn inside_longer_bodies(body: &[u8]) -> Vec<Vec<u8>> {
    let pad = [&b"\""[..], &[b'x'; 80], b"\""].concat();
    vec![
        [&b"["[..], body, b",", &pad, b"]"].concat(),
        [&b"["[..], &pad, b",", body, b"]"].concat(),
        [&b"\n["[..], body, b",", &pad, b"]"].concat(),
        [&b"[ "[..], body, b" , ", &pad, b" ]"].concat(),
    ]
}

verdicts! {
    empty: b"" => false,
    only_whitespace: b" \t\r\n" => false,
    whitespace_of_every_kind_around_every_token: b" \t\n\r{ \t\n\r\"a\" \t\n\r: \t\n\r[ 1 ,\r\n2\t] \t\n\r} \t\n\r" => true,
    form_feed_is_not_whitespace: b"[1,\x0c2]" => false,
    vertical_tab_is_not_whitespace: b"\x0b[]" => false,
    no_break_space_is_not_whitespace: "\u{a0}[]" => false,
    byte_order_mark: b"\xef\xbb\xbf{}" => false,
    nul_alone: b"\x00" => false,
    nul_after_value: b"{}\x00" => false,
    nul_in_array: b"[\x00]" => false,
    nul_in_string: b"\"a\x00b\"" => false,
    escaped_nul: b"\"\\u0000\"" => true,
    delete_in_string: b"\"\x7f\"" => true,
    top_level_scalars: b"\"s\"" => true,
    top_level_number: b" 12 " => true,
    two_values: b"1 2" => false,
    trailing_garbage: b"{}x" => false,
    escape_quote: br#""\"""# => true,
    escape_backslash: br#""\\""# => true,
    escape_slash: br#""\/""# => true,
    escape_b_f_n_r_t: br#""\b\f\n\r\t""# => true,
    escape_u_lower_and_upper_hex: br#""\u00e9\u00E9\uABCD\uabcd""# => true,
    escape_unknown: br#""\a""# => false,
    escape_x: br#""\x41""# => false,
    escape_capital_u: br#""\U0041""# => false,
    escape_u_short: br#""\u12""# => false,
    escape_u_not_hex: br#""\u12G4""# => false,
    escape_u_zzzz: br#""\uZZZZ""# => false,
    escape_at_end: b"\"\\" => false,
    escape_u_at_end: b"\"\\u00" => false,
    escaped_quote_does_not_close: br#""\""# => false,
    surrogate_pair: br#""\ud83d\ude00""# => true,
    lone_high_surrogate: br#""\ud800""# => true,
    lone_low_surrogate: br#""\udc00""# => true,
    reversed_surrogates: br#"["\ude00\ud83d"]"# => true,
    unclosed_string: b"\"abc" => false,
    utf8_in_string: "[\"caf\u{e9} \u{1F600} \u{4e2d}\"]" => true,
    latin1_in_string: b"\"caf\xe9\"" => false,
    overlong_utf8: b"\"\xc0\x80\"" => false,
    utf8_encoded_surrogate: b"\"\xed\xa0\x80\"" => false,
    truncated_utf8: b"\"\xe4\xb8\"" => false,
    utf8_outside_string: "[\u{e9}]" => false,
    minus_zero: b"-0" => true,
    exponent: b"1e5" => true,
    exponent_signs: b"[1E+5,1e-5,-1.5E-0]" => true,
    leading_zero: b"01" => false,
    leading_zero_in_array: b"[01]" => false,
    minus_leading_zero: b"-01" => false,
    zero_point_zero: b"0.0" => true,
    point_without_fraction: b"1." => false,
    fraction_without_integer: b".5" => false,
    exponent_without_digits: b"1e" => false,
    exponent_sign_without_digits: b"[1e+]" => false,
    plus_sign: b"+1" => false,
    lone_minus: b"[-]" => false,
    double_minus: b"--1" => false,
    huge_exponent: b"1E400" => true,
    integer_beyond_u64: b"123456789012345678901234567890" => true,
    hex_number: b"0x1" => false,
    two_fractions: b"1.5.2" => false,
    not_a_number: b"NaN" => false,
    numbers_of_every_length_around_eight_digits: b"[7.25,-0.5,1234567,12345678,123456789,0.1234567,0.12345678,-9876543.21]" => true,
    minus_point: b"[-.5]" => false,
    point_in_array: b"[1.,2]" => false,
    leading_zeros_after_minus_in_array: b"[-00]" => false,
    digits_after_fraction_zero: b"[0.00000000001]" => true,
    infinity: b"[-Infinity]" => false,
    literals: b"[true,false,null]" => true,
    literal_cut_short: b"tru" => false,
    literal_capitalised: b"True" => false,
    literal_too_long: b"nulll" => false,
    literals_run_together: b"[truefalse]" => false,
    empty_containers: b"[{},[],{\"a\":[]}]" => true,
    trailing_comma_in_array: b"[1,]" => false,
    trailing_comma_in_object: b"{\"a\":1,}" => false,
    leading_comma: b"[,1]" => false,
    lone_comma_in_object: b"{,}" => false,
    key_without_value: b"{\"a\"}" => false,
    key_not_a_string: b"{1:2}" => false,
    double_colon: b"{\"a\"::1}" => false,
    missing_comma: b"{\"a\":1 \"b\":2}" => false,
    mismatched_close: b"[1}" => false,
    extra_close: b"[1]]" => false,
    unclosed: b"[{\"a\":[1]}" => false,
    key_in_array: br#"["a","b":1]"# => false,
    key_first_in_array: br#"["a":1]"# => false,
    key_in_array_in_object: br#"{"a":["x","y":1]}"# => false,
    key_without_colon_after_member: br#"{"a":1,"b"}"# => false,
    value_without_key_after_member: br#"{"a":1,2}"# => false,
    array_closed_in_object: br#"{"a":1]"# => false,
    object_closed_in_array: br#"["a"}"# => false,
    comma_between_members_only: b"{\"a\":1,\"b\":2,\"c\":{\"d\":[3,4]}}" => true,
}

#[test]
fn control_bytes_in_strings_are_rejected_and_others_accepted() {
    for c in 0..=u8::MAX {
        let body = [b'"', b'a', c, b'b', b'"'];
        let valid = reference(&body);
        assert_eq!(is_valid(&body), valid, "{c:#x}");
        if c < 0x20 {
            assert!(!valid, "{c:#x}");
        }
    }
}

/// Nesting `depth` levels, alternating arrays and objects, with a value at the bottom.
fn nested(depth: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for level in 0..depth {
        body.extend_from_slice(if level % 3 == 1 { b"{\"k\":" } else { b"[" });
    }
    body.extend_from_slice(b"\"bottom\"");
    for level in (0..depth).rev() {
        body.push(if level % 3 == 1 { b'}' } else { b']' });
    }
    body
}

#[test]
fn nesting_of_any_depth_is_accepted_without_recursion() {
    for depth in [
        1,
        62,
        63,
        64,
        126,
        INLINE_LEVELS,
        INLINE_LEVELS + 1,
        100_000,
    ] {
        let body = nested(depth);
        assert!(is_valid(&body), "{depth}");
        assert!(reference(&body), "{depth}");
        // Whitespace first keeps the body off the walk for plain bodies.
        let body = [&b"\n"[..], &body].concat();
        assert!(is_valid(&body), "{depth} after whitespace");
    }
    let arrays = [vec![b'['; 100_000], vec![b']'; 100_000]].concat();
    assert!(is_valid(&arrays) && reference(&arrays));
}

#[test]
fn deep_nesting_still_matches_every_close_to_its_open() {
    for depth in [63, 64, 65, INLINE_LEVELS + 63, 100_000] {
        let good = nested(depth);
        // The closing brackets end the body, innermost first. Swap one for the other kind:
        // the innermost, those around the boundary of a saved word, the outermost.
        let closes = good.len() - depth;
        for k in [0, 62, 63, 64, depth - 1]
            .into_iter()
            .filter(|&k| k < depth)
        {
            let mut bad = good.clone();
            let c = &mut bad[closes + k];
            *c = if *c == b']' { b'}' } else { b']' };
            assert!(!is_valid(&bad), "{depth}, close {k}");
            assert!(!reference(&bad), "{depth}, close {k}");
            let bad = [&b"\n"[..], &bad].concat();
            assert!(!is_valid(&bad), "{depth}, close {k}, after whitespace");
        }
        assert!(!is_valid(&good[..good.len() - 1]), "{depth} unclosed");
    }
}

/// Bytes that are often nearly JSON: structure, literals, escapes, and non-ASCII bytes
/// (valid UTF-8 or not).
pub(crate) fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(json_ish_piece(), 0..24).prop_map(|pieces| pieces.concat())
}

/// One piece of [`json_ish`].
fn json_ish_piece() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        Just(&b"{"[..]),
        Just(&b"}"[..]),
        Just(&b"["[..]),
        Just(&b"]"[..]),
        Just(&b"\""[..]),
        Just(&b":"[..]),
        Just(&b","[..]),
        Just(&b" "[..]),
        Just(&b"\\"[..]),
        Just(&b"\\u00e9"[..]),
        Just(&b"\\ud800"[..]),
        Just(&b"1.5e3"[..]),
        Just(&b"-0"[..]),
        Just(&b"true"[..]),
        Just(&b"null"[..]),
        Just(&b"ab"[..]),
        Just(&b"\"k\""[..]),
        Just(&b"\"\xe9\""[..]),
        Just(&b"\"\xc3\xa9\""[..]),
        Just("\u{e9}\u{1F600}".as_bytes()),
        Just(&b"\xc3"[..]),
        Just(&b"\xff"[..]),
        Just(&b"\xed\xa0\x80"[..]),
    ]
}

/// [`json_ish`], with pieces of the number, whitespace and escape grammar that it lacks, and
/// bytes a lenient parser might take for them.
fn tokens() -> impl Strategy<Value = Vec<u8>> {
    let more = prop::sample::select(
        &[
            "0",
            "1",
            "9",
            ".",
            "e",
            "E",
            "+",
            "-",
            "\t",
            "\n",
            "\r",
            "\x0c",
            "\x00",
            "\x1f",
            "\x7f",
            "\\/",
            "\\b",
            "\\uABCD",
            "\\u12",
            "\\x",
            "tru",
            "fals",
            "nul",
            "\"",
            "\"a\":",
            "[[",
            "]]",
            "{\"\":",
            "1234567",
            "0.1234567",
            "12345678.5",
        ][..],
    )
    .prop_map(str::as_bytes);
    let piece = prop_oneof![2 => json_ish_piece(), 1 => more];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// Any JSON value: every kind of scalar (strings with every escape serde_json writes and any
/// character), and containers nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        "[a-z\"\\\\/\u{0}-\u{1f}\u{e9}]{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((".{0,6}", inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A JSON value whose compact text is plain (see `is_plain_json`): strings and keys of printable
/// ASCII without quotes or backslashes (so serde_json writes no escape), and every kind of
/// number and literal, in containers nested a few levels, long enough to cross many windows.
fn plain_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let text = "[ !#-\\[\\]-~]{0,24}";
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0..1000i64).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-1000..1000i32, 0..1000u32).prop_map(|(int, fraction)| {
            serde_json::from_str(&format!("{int}.{fraction}")).expect("a number")
        }),
        text.prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec(("[ !#-\\[\\]-~]{0,10}", inner), 0..8)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A generated plain JSON document, compact: a container at the top, as the plain walk needs.
fn plain_text() -> impl Strategy<Value = Vec<u8>> {
    plain_value().prop_map(|value| {
        let top = match value {
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => value,
            scalar => serde_json::Value::Array(vec![scalar]),
        };
        serde_json::to_vec(&top).expect("a Value serializes")
    })
}

/// A generated JSON document, compact or pretty-printed.
pub(crate) fn json_text() -> impl Strategy<Value = Vec<u8>> {
    (json_value(), any::<bool>()).prop_map(|(value, pretty)| {
        if pretty {
            serde_json::to_vec_pretty(&value)
        } else {
            serde_json::to_vec(&value)
        }
        .expect("a Value serializes")
    })
}

/// Bytes that keep a body plain, weighted towards those that make or break its grammar.
const PLAIN_BYTES: [u8; 32] = *b"{}[]\",:  0123456789.eE+-tfnulrsa";

/// One byte of `body` replaced, inserted before, or removed, at `at`; or `body` cut there.
fn mutate(mut body: Vec<u8>, how: u8, at: prop::sample::Index, byte: u8) -> Vec<u8> {
    let i = at.index(body.len() + 1);
    match how % 4 {
        0 if i < body.len() => body[i] = byte,
        1 => body.insert(i, byte),
        2 if i < body.len() => drop(body.remove(i)),
        _ => body.truncate(i),
    }
    body
}

proptest! {
    #![proptest_config(Config::with_cases(2_000))]

    #[test]
    fn agrees_with_serde_json_on_near_json(body in tokens()) {
        prop_assert_eq!(is_valid(&body), reference(&body), "{:?}", body.escape_ascii());
    }

    #[test]
    fn accepts_generated_json(body in json_text()) {
        prop_assert!(is_valid(&body), "{:?}", body.escape_ascii());
    }

    #[test]
    fn accepts_generated_plain_json(body in plain_text()) {
        prop_assert!(super::scan::is_plain_json(&body), "{:?}", body.escape_ascii());
        prop_assert!(is_valid(&body), "{:?}", body.escape_ascii());
    }

    #[test]
    fn agrees_with_serde_json_on_mutations_that_keep_a_body_plain(
        body in plain_text(),
        mutations in proptest::collection::vec(
            (any::<u8>(), any::<prop::sample::Index>(), prop::sample::select(&PLAIN_BYTES[..])),
            1..4,
        ),
    ) {
        let body = mutations
            .into_iter()
            .fold(body, |body, (how, at, byte)| mutate(body, how, at, byte));
        prop_assert_eq!(is_valid(&body), reference(&body), "{:?}", body.escape_ascii());
    }

    #[test]
    fn agrees_with_serde_json_when_punctuation_is_swapped(
        body in plain_text(),
        swaps in proptest::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(&b",:[]{}\" "[..])),
            1..3,
        ),
    ) {
        let mut body = body;
        for (at, byte) in swaps {
            let punctuation: Vec<usize> = (0..body.len())
                .filter(|&i| b",:[]{}\"".contains(&body[i]))
                .collect();
            if !punctuation.is_empty() {
                body[punctuation[at.index(punctuation.len())]] = byte;
            }
        }
        prop_assert_eq!(is_valid(&body), reference(&body), "{:?}", body.escape_ascii());
    }

    #[test]
    fn agrees_with_serde_json_on_one_byte_mutations(
        body in json_text(),
        how in any::<u8>(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![any::<u8>(), prop::sample::select(&b"{}[]\",:\\ 0.eE+-tfnu"[..])],
    ) {
        let body = mutate(body, how, at, byte);
        prop_assert_eq!(is_valid(&body), reference(&body), "{:?}", body.escape_ascii());
    }
}
