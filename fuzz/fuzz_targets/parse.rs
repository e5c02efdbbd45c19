//! Drives the request parser and the chunked decoder over arbitrary bytes, the way a server
//! would (head, body, next pipelined head), once whole and once split in two. The first input
//! byte picks the split point. Checks: no panic, limits hold (asserted by the shared driver,
//! `tests/common/driver.rs`), and both runs agree exactly, the unfinished message included.

#![no_main]

#[path = "../../tests/common/driver.rs"]
mod driver;

use driver::Config;
use libfuzzer_sys::fuzz_target;

/// Pipeline whatever `keep_alive` says, so every byte gets parsed; a small body limit, so the
/// decoder's limit gets exercised.
const CONFIG: Config = Config {
    max_body: 1 << 12,
    honour_close: false,
};

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let split = input.len() * usize::from(first) / 255;
    let whole = driver::run(input, &[], CONFIG);
    let halves = driver::run(input, &[split], CONFIG);
    assert_eq!(whole, halves, "split at {split}");
});
