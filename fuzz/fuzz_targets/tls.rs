//! Drives one HTTPS connection (`cerberus::fuzzing`): the first input byte picks the mode and
//! how much of the rest is the script. Even: a real rustls client (TLS 1.3, or 1.2 when the
//! byte's second bit is set) sends the rest as requests, its records cut and the server's
//! writes limited by the script; the client must decrypt exactly the responses a plain
//! connection gives at once. Odd: the rest is a client's raw bytes, anything at all; the
//! connection must neither panic nor hang.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let (script, rest) = input.split_at(input.len() * usize::from(first >> 2) / 63);
    if first % 2 == 0 {
        cerberus::fuzzing::run_tls(script, rest, first & 2 != 0);
    } else {
        cerberus::fuzzing::tls_bytes(script, rest);
    }
});
