//! The operating-system boundary: the few system calls std, socket2 and mio do not cover
//! ([`sys`], the only `unsafe` outside the parser's SSE2 scanning in `http::scan`), and the
//! systemd protocols built on them ([`systemd`]).

pub mod sys;
pub mod systemd;
