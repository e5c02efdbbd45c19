//! The machine boundary, and the crate's only `unsafe` code (the crate root denies it
//! everywhere else): the few system calls std, socket2 and mio do not cover ([`sys`]), the
//! systemd protocols built on them ([`systemd`]), the workers' alarm timer ([`timerfd`]), the
//! body file `sendfile` sends from ([`memfd`]), and the SSE2 steps of the byte scanners that the parser and the JSON validator use ([`simd`]).

pub mod memfd;
pub mod simd;
pub mod sys;
pub mod systemd;
pub mod timerfd;
