//! A driver for counting the instructions of one JSON validation with callgrind.
//!
//! `json_instructions VALIDATOR SIZE CALLS` validates one of the bodies of `benches/json.rs`
//! (`200B`, `1KiB` or `16KiB`) `CALLS` times with `cerberus` or `serde_json`;
//! `cerberus_general` is `cerberus` on the body after a newline, which keeps it off the walk
//! for plain bodies. Run it under callgrind with two call counts; the difference of the
//! totals, divided by the difference of the counts, is the cost of one call, without start-up:
//!
//! ```text
//! cargo build --release --example json_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/json_instructions cerberus 1KiB 1001
//! ```

#[path = "../benches/common/bodies.rs"]
mod bodies;

use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, validator, size, calls] = &args[..] else {
        eprintln!(
            "usage: json_instructions cerberus|cerberus_general|serde_json 200B|1KiB|16KiB CALLS"
        );
        std::process::exit(2);
    };
    let calls: usize = calls.parse().expect("CALLS is a number");
    let (_, mut body) = bodies::sizes()
        .into_iter()
        .find(|(name, _)| name == size)
        .expect("SIZE is 200B, 1KiB or 16KiB");
    let validate: fn(&[u8]) -> bool = match validator.as_str() {
        "cerberus" => cerberus::json::is_valid,
        "cerberus_general" => {
            body.insert(0, b'\n');
            cerberus::json::is_valid
        }
        "serde_json" => bodies::serde_json_valid,
        _ => panic!("VALIDATOR is cerberus, cerberus_general or serde_json"),
    };
    let mut valid = 0;
    for _ in 0..calls {
        valid += usize::from(validate(black_box(&body)));
    }
    assert_eq!(valid, calls, "every call finds the body valid");
}
