//! Times of the JSON validator against serde_json, taken in alternation.
//!
//! This machine's speed shifts from one second to the next, so two benchmarks run one after the
//! other can disagree by half. Here each round times a short chunk of calls of each validator,
//! one right after the other, on each of the bodies of `benches/json.rs`; the report gives the
//! median time per call of each and the median of the per-round ratios.
//!
//! ```text
//! cargo run --release --example json_times [ROUNDS]      # pin it: taskset -c 1 ...
//! ```

#[path = "../benches/common/bodies.rs"]
mod bodies;

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Nanoseconds per call of `validate` on `body`, over `calls` calls.
fn time(validate: fn(&[u8]) -> bool, body: &[u8], calls: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        assert!(validate(black_box(body)));
    }
    start.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().expect("ROUNDS is a number"),
        None => 41,
    };
    let cerberus: fn(&[u8]) -> bool = cerberus::json::is_valid;
    println!("| body | cerberus | serde_json | ratio (median of rounds) |");
    println!("|---|---|---|---|");
    let general = bodies::sizes().map(|(name, body)| {
        // After a newline, a body is not plain: the general walk.
        (
            format!("{name}, general walk"),
            [&b"\n"[..], &body].concat(),
        )
    });
    let bodies = bodies::sizes().map(|(name, body)| (name.to_string(), body));
    for (name, body) in bodies.into_iter().chain(general) {
        // Chunks of about 2 ms of serde_json.
        let probe = time(bodies::serde_json_valid, &body, 100);
        let calls = (Duration::from_millis(2).as_nanos() as f64 / probe).max(1.0) as u32;
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let a = time(cerberus, &body, calls);
            let b = time(bodies::serde_json_valid, &body, calls);
            ours.push(a);
            theirs.push(b);
            ratios.push(a / b);
        }
        println!(
            "| {name} ({} B) | {:.0} ns | {:.0} ns | {:.2} |",
            body.len(),
            median(ours),
            median(theirs),
            median(ratios)
        );
    }
}
