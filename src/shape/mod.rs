//! Shaped responses, for load tests: what a client may ask of a `shape` route (its grammar
//! and distributions) and what the server counts of what it applied. Pure code, no I/O: the
//! handler that uses it is `handler::shape`, and the responses that complete later belong to
//! the worker's connections.

pub mod counters;
pub mod dist;
pub mod grammar;
