//! A paced load client for the load-test target's timing figures (`benches/shape.py` runs
//! it): many keep-alive connections, each sending one request at a time at a fixed total rate,
//! over one `mio` loop, measuring per response:
//!
//! - `delay`: lateness, the response's completion minus its request's send minus the delay it
//!   asked for (never negative for a correct server);
//! - `drip`: the gaps between the chunks of a chunked body, against the interval asked for.
//!
//! ```text
//! shape_load delay ADDR PATH CONNS RATE SECS EXPECT_US
//! shape_load drip  ADDR PATH CONNS RATE SECS INTERVAL_US
//! ```
//! It prints one line of JSON: counts, errors, and percentiles in microseconds.
//!
//! With `SHAPE_POLL=1` the loop polls without ever sleeping (a core at 100%), so that the
//! client's own wake-up from idle, tens of microseconds on a VM, is not counted as the server's
//! lateness. `SHAPE_DUMP=FILE` writes each response's send time and lateness (`delay` mode, in
//! microseconds from the start), to see when the late ones came. `SHAPE_RXSTAMP=1` (`delay`
//! mode) takes each response's arrival from the kernel's receive timestamp of its last bytes
//! (`SO_TIMESTAMPNS`) and its send time from the same clock: on loopback that is when the
//! server's write delivered them, whenever this client got to run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// One connection's state.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// When its request in flight was sent.
    sent: Option<Instant>,
    /// When each chunk of the current response arrived.
    chunks: Vec<Instant>,
    /// With `SHAPE_RXSTAMP=1`: when its request went (`CLOCK_REALTIME`, ns), and when the
    /// kernel received the last bytes read (the socket's receive timestamp, same clock).
    sent_real: i64,
    received_real: i64,
}

/// `CLOCK_REALTIME` in nanoseconds: the clock the kernel's receive timestamps are on.
fn realtime_ns() -> i64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut t) };
    nanos(&t)
}

/// A timespec in nanoseconds (both fields are 64-bit on the Linux targets this runs on).
fn nanos(t: &libc::timespec) -> i64 {
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

/// Read into `buf` with `recvmsg`, returning the bytes read and the kernel's receive
/// timestamp of the last of them (`SO_TIMESTAMPNS`), if it gave one.
fn read_stamped(stream: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<i64>)> {
    use std::os::fd::AsRawFd;
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is valid (no name, no buffers) before the fields are set.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all alive for the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel just filled, within
    // `msg_controllen`; the timestamp's data is a timespec, read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let t: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(nanos(&t));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, stamp))
}

/// What a buffer holds of one response: `None` while incomplete, else (its length, the
/// offsets in it where each chunk's data ended, for a chunked body).
fn parse(buf: &[u8]) -> Option<(usize, Vec<usize>)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end])
        .ok()?
        .to_ascii_lowercase();
    if let Some(at) = head.find("content-length:") {
        let rest = &head[at + 15..];
        let len: usize = rest[..rest.find('\r')?].trim().parse().ok()?;
        return (buf.len() >= head_end + len).then_some((head_end + len, Vec::new()));
    }
    // Chunked.
    let mut at = head_end;
    let mut ends = Vec::new();
    loop {
        let line_end = at + buf[at..].windows(2).position(|w| w == b"\r\n")?;
        let text = std::str::from_utf8(&buf[at..line_end]).ok()?;
        let size = usize::from_str_radix(text.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            let end = line_end + 4;
            return (buf.len() >= end).then_some((end, ends));
        }
        let data_end = line_end + 2 + size;
        if buf.len() < data_end + 2 {
            // The chunk's data may be partly here: note nothing yet.
            return None;
        }
        ends.push(data_end);
        at = data_end + 2;
    }
}

/// Chunks complete in `buf` so far (for arrival times as they come).
fn complete_chunks(buf: &[u8]) -> usize {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
        return 0;
    };
    let mut at = head_end;
    let mut n = 0;
    loop {
        let Some(line) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            return n;
        };
        let line_end = at + line;
        let Ok(text) = std::str::from_utf8(&buf[at..line_end]) else {
            return n;
        };
        let Ok(size) = usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
        else {
            return n;
        };
        if size == 0 || buf.len() < line_end + 2 + size + 2 {
            return n;
        }
        n += 1;
        at = line_end + 2 + size + 2;
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 8 {
        eprintln!("usage: shape_load delay|drip ADDR PATH CONNS RATE SECS EXPECT_US");
        std::process::exit(2);
    }
    let drip = match args[1].as_str() {
        "delay" => false,
        "drip" => true,
        other => panic!("unknown mode {other}"),
    };
    let addr: SocketAddr = args[2].parse().expect("ADDR");
    let request = format!("GET {} HTTP/1.1\r\nHost: bench\r\n\r\n", args[3]).into_bytes();
    let conns: usize = args[4].parse().expect("CONNS");
    let rate: f64 = args[5].parse().expect("RATE");
    let secs: f64 = args[6].parse().expect("SECS");
    let expect_us: i64 = args[7].parse().expect("EXPECT_US");

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    // Poll without sleeping: the client's own wake-up then stays out of what it measures.
    let polling = std::env::var_os("SHAPE_POLL").is_some_and(|v| v == "1");
    // Take arrival from the kernel's receive timestamp instead of the clock after the read.
    let stamped = !drip && std::env::var_os("SHAPE_RXSTAMP").is_some_and(|v| v == "1");
    let mut all: Vec<Conn> = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut stream = TcpStream::connect(addr)?;
        if stamped {
            let on: libc::c_int = 1;
            // SAFETY: a plain int option on a socket we own.
            let rc = unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&stream),
                    libc::SOL_SOCKET,
                    libc::SO_TIMESTAMPNS,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of_val(&on) as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        all.push(Conn {
            stream,
            buf: Vec::new(),
            sent: None,
            chunks: Vec::new(),
            sent_real: 0,
            received_real: 0,
        });
    }
    // Let the connections complete before pacing starts.
    std::thread::sleep(Duration::from_millis(300));
    let period = Duration::from_secs_f64(conns as f64 / rate);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = (0..conns)
        .map(|i| Reverse((start + period.mul_f64(i as f64 / conns as f64), i)))
        .collect();
    let (mut samples, mut errors, mut early, mut done) = (Vec::<i64>::new(), 0u64, 0u64, 0u64);
    // (sent, lateness) of each response, in microseconds from the start, for SHAPE_DUMP.
    let mut timeline: Vec<(i64, i64)> = Vec::new();
    let mut read_buf = vec![0u8; 1 << 16];
    loop {
        let now = Instant::now();
        while let Some(&Reverse((at, i))) = due.peek() {
            if at > now {
                break;
            }
            due.pop();
            if at >= end {
                continue;
            }
            let c = &mut all[i];
            if c.sent.is_some() {
                // Still waiting: send when it answers (counted from then).
                continue;
            }
            // The clock is read before the write: a client descheduled after it would
            // otherwise see the response early.
            let sent = Instant::now();
            if stamped {
                c.sent_real = realtime_ns();
            }
            match c.stream.write(&request) {
                Ok(n) if n == request.len() => c.sent = Some(sent),
                _ => errors += 1,
            }
        }
        let in_flight = all.iter().filter(|c| c.sent.is_some()).count();
        if now >= end && in_flight == 0 {
            break;
        }
        if now >= end + Duration::from_secs(15) {
            errors += in_flight as u64;
            break;
        }
        let timeout = due
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(50))
            .min(Duration::from_millis(50));
        let timeout = if polling { Duration::ZERO } else { timeout };
        poll.poll(&mut events, Some(timeout))?;
        for event in events.iter() {
            let i = event.token().0;
            let c = &mut all[i];
            loop {
                let read = match stamped {
                    true => read_stamped(&c.stream, &mut read_buf).map(|(n, stamp)| {
                        if let Some(at) = stamp {
                            c.received_real = at;
                        }
                        n
                    }),
                    false => c.stream.read(&mut read_buf),
                };
                match read {
                    Ok(0) => {
                        errors += 1;
                        break;
                    }
                    Ok(n) => c.buf.extend_from_slice(&read_buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            let arrived = Instant::now();
            if drip {
                while c.chunks.len() < complete_chunks(&c.buf) {
                    c.chunks.push(arrived);
                }
            }
            let Some((len, _)) = parse(&c.buf) else {
                continue;
            };
            c.buf.drain(..len);
            let Some(sent) = c.sent.take() else {
                continue;
            };
            done += 1;
            if drip {
                for pair in c.chunks.windows(2) {
                    let gap = (pair[1] - pair[0]).as_micros() as i64;
                    samples.push((gap - expect_us).abs());
                }
                c.chunks.clear();
            } else {
                let late = match stamped {
                    true => (c.received_real - c.sent_real) / 1000 - expect_us,
                    false => (arrived - sent).as_micros() as i64 - expect_us,
                };
                if late < 0 {
                    early += 1;
                }
                samples.push(late);
                timeline.push(((sent - start).as_micros() as i64, late));
            }
            let next = sent + period;
            due.push(Reverse((next.max(arrived), i)));
        }
    }
    if let Some(path) = std::env::var_os("SHAPE_DUMP") {
        let text: String = timeline.iter().map(|(t, l)| format!("{t} {l}\n")).collect();
        std::fs::write(path, text)?;
    }
    samples.sort_unstable();
    let took = start.elapsed().as_secs_f64();
    println!(
        "{{\"mode\":\"{}\",\"responses\":{done},\"rps\":{:.0},\"errors\":{errors},\"early\":{early},\
         \"min_us\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        args[1],
        done as f64 / took,
        samples.first().copied().unwrap_or(0),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0),
    );
    Ok(())
}
