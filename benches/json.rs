//! JSON validation throughput: Cerberus's validator against serde_json on the same bodies.
//!
//! serde_json's side is what the server did before it had its own validator, and still the
//! reference: `str::from_utf8`, then deserializing `IgnoredAny`. Each group holds one body,
//! so criterion prints the two side by side.
//!
//! Run: `cargo bench --bench json -- --warm-up-time 1 --measurement-time 3`
//! (instruction counts, which load does not disturb: `examples/json_instructions.rs`).

#[path = "common/bodies.rs"]
mod bodies;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn validate(c: &mut Criterion) {
    for (name, body) in bodies::sizes() {
        assert!(cerberus::json::is_valid(&body) && bodies::serde_json_valid(&body));
        let mut group = c.benchmark_group(format!("json/{name}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("cerberus", |b| {
            b.iter(|| cerberus::json::is_valid(black_box(&body)))
        });
        group.bench_function("serde_json", |b| {
            b.iter(|| bodies::serde_json_valid(black_box(&body)))
        });
        group.finish();
    }
}

criterion_group!(benches, validate);
criterion_main!(benches);
