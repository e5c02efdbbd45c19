//! Compares Cerberus's JSON validator with its reference on arbitrary bytes: serde_json
//! deserializing `IgnoredAny` from `str::from_utf8(data)`, the server's check before the
//! validator existed and still the source of its error messages. The verdicts must be equal.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reference = std::str::from_utf8(data)
        .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
    assert_eq!(
        cerberus::json::is_valid(data),
        reference,
        "{:?}",
        data.escape_ascii().to_string()
    );
});
