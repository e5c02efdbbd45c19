//! The JSON bodies the validator is measured on, and the reference it is measured against,
//! shared by `benches/json.rs`, `examples/json_instructions.rs` and `examples/json_times.rs`.
//!
//! They have the shape of `compare.py`'s post-json body: an order with `items` entries. With 12
//! items it is that body, byte for byte (921 bytes, checked against `tests/data/post-json.json`).

/// The order body with `items` entries.
pub fn order(items: usize) -> Vec<u8> {
    let items: Vec<String> = (1..=items)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"item-{i}","price":{}.25,"tags":["a","b","c"],"ok":true}}"#,
                i * 7
            )
        })
        .collect();
    format!(
        r#"{{"order":1234,"customer":{{"name":"Ada","email":"ada@example.com"}},"items":[{}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

/// The bodies measured, by name: about 200 B, the 921-byte benchmark body, and about 16 KiB.
pub fn sizes() -> [(&'static str, Vec<u8>); 3] {
    let post_json = order(12);
    assert_eq!(post_json, include_bytes!("../../tests/data/post-json.json"));
    [
        ("200B", order(2)),
        ("1KiB", post_json),
        ("16KiB", order(220)),
    ]
}

/// The reference verdict, as the server computed it before `cerberus::json`: UTF-8, then
/// serde_json deserializing `IgnoredAny`.
pub fn serde_json_valid(body: &[u8]) -> bool {
    std::str::from_utf8(body)
        .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
}
