//! Drives one connection's state machine (`cerberus::fuzzing`) over a scripted socket: the
//! first input byte says how much of the rest is the script (how the bytes arrive, how much
//! each write may take) and the remainder is what the client sends. Checks: no panic, the
//! worker's write buffer is empty after every event, and the client receives exactly what it
//! would if every byte arrived at once (`Date` values and `100 Continue` aside).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let (script, requests) = input.split_at(input.len() * usize::from(first) / 255);
    cerberus::fuzzing::run(script, requests);
});
