//! Listening sockets: one per worker, all on the same address with `SO_REUSEPORT`, so the
//! kernel spreads new connections over the workers without a shared accept lock.
//!
//! [`Listeners`] is the supervisor's own set of handles on them. It outlives generations of
//! workers, so a reload never closes a socket (and the kernel never resets a connection
//! waiting in its accept queue). Only a change of `listen` binds new sockets; the old ones
//! close once the old generation has drained.
//!
//! `SO_REUSEPORT` would also let a second Cerberus (same user) join the address of a running
//! one and silently take part of its connections. So at start-up [`Listeners::claim`] first
//! checks that no socket listens there; the reload path keeps [`Listeners::bind`], because the
//! sockets it may overlap with are this process's own.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// The listening sockets of one address.
pub struct Listeners {
    /// The address they are bound to (with the real port when the config said 0).
    pub addr: SocketAddr,
    /// The sockets. Never fewer than the workers of any generation that used them, so that
    /// shrinking the worker count never closes one; several per worker are fine.
    sockets: Vec<TcpListener>,
    /// Came from systemd: we did not bind them and cannot add more of the same kind.
    inherited: bool,
}

impl Listeners {
    /// Bind `count` `SO_REUSEPORT` sockets on `addr`.
    pub fn bind(addr: SocketAddr, count: usize, backlog: u32) -> Result<Listeners, BindError> {
        let sockets = bind_all(addr, count, backlog)?;
        let addr = sockets[0]
            .local_addr()
            .map_err(|source| BindError { addr, source })?;
        Ok(Listeners {
            addr,
            sockets,
            inherited: false,
        })
    }

    /// Bind like [`Listeners::bind`], for a server that is starting: refuse (`AddrInUse`) an
    /// address where any socket already listens, even one that would share it with us.
    ///
    /// `SO_REUSEPORT` sockets of one user share a port without complaint, so the check binds a
    /// probe socket *without* it first: Linux refuses that bind while a socket listens there.
    /// The probe keeps `SO_REUSEADDR`, so connections of a previous run still in `TIME_WAIT`
    /// do not block a restart. It is closed before the real sockets bind. Port 0 needs no
    /// check: the kernel picks a port nobody has.
    pub fn claim(addr: SocketAddr, count: usize, backlog: u32) -> Result<Listeners, BindError> {
        if addr.port() != 0 {
            probe(addr).map_err(|source| BindError { addr, source })?;
        }
        Listeners::bind(addr, count, backlog)
    }

    /// Use sockets passed by systemd socket activation.
    pub fn inherited(sockets: Vec<TcpListener>) -> io::Result<Listeners> {
        let addr = sockets[0].local_addr()?;
        for socket in &sockets {
            // Inherited by every accepted socket (see [`bind`]).
            socket2::SockRef::from(socket).set_nodelay(true)?;
            crate::os::sys::set_notsent_lowat(socket, NOTSENT_LOWAT)?;
        }
        Ok(Listeners {
            addr,
            sockets,
            inherited: true,
        })
    }

    /// Were these passed by systemd?
    pub fn is_inherited(&self) -> bool {
        self.inherited
    }

    /// Make sure there is at least one socket per worker (bound ones only; inherited ones are
    /// shared when fewer than the workers).
    pub fn ensure(&mut self, count: usize, backlog: u32) -> Result<(), BindError> {
        while !self.inherited && self.sockets.len() < count {
            let socket = bind(self.addr, backlog).map_err(|source| BindError {
                addr: self.addr,
                source,
            })?;
            self.sockets.push(socket);
        }
        Ok(())
    }

    /// Change the backlog of every socket (`listen` again on a listening socket does that).
    pub fn set_backlog(&self, backlog: u32) -> io::Result<()> {
        for socket in &self.sockets {
            socket2::SockRef::from(socket).listen(backlog.min(i32::MAX as u32) as i32)?;
        }
        Ok(())
    }

    /// Turn TCP_DEFER_ACCEPT on (1 s of silence at most) or off on every socket. Where the
    /// kernel refuses, say so and go on: it is an optimisation, and without it connections are
    /// accepted at the handshake (a worker's first read may then find nothing yet).
    pub fn set_defer_accept(&self, on: bool) {
        for socket in &self.sockets {
            if let Err(e) = crate::os::sys::set_defer_accept(socket, u32::from(on)) {
                eprintln!(
                    "cerberus: cannot set TCP_DEFER_ACCEPT on {}: {e}; going on without it",
                    self.addr
                );
                return;
            }
        }
    }

    /// Handles on the sockets for `workers` workers: socket `i` goes to worker `i % workers`;
    /// with fewer sockets than workers, every worker shares all of them.
    pub fn split(&self, workers: usize) -> io::Result<Vec<Vec<TcpListener>>> {
        let mut split: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
        if self.sockets.len() >= workers {
            for (i, socket) in self.sockets.iter().enumerate() {
                split[i % workers].push(socket.try_clone()?);
            }
        } else {
            for handles in &mut split {
                for socket in &self.sockets {
                    handles.push(socket.try_clone()?);
                }
            }
        }
        Ok(split)
    }
}

/// A listener that could not be set up, with the address it was for.
#[derive(Debug)]
pub struct BindError {
    /// The address we tried.
    pub addr: SocketAddr,
    /// What the kernel said.
    pub source: io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = match self.source.kind() {
            io::ErrorKind::AddrInUse => {
                " (another process, perhaps another cerberus, is listening there; stop it or \
                 pick another --listen)"
            }
            io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
            io::ErrorKind::AddrNotAvailable => " (no interface of this machine has that address)",
            _ => "",
        };
        write!(f, "cannot listen on {}: {}{hint}", self.addr, self.source)
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Bind `count` non-blocking listeners on `addr`. With port 0, the first picks the port and the
/// others join it.
pub fn bind_all(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
) -> Result<Vec<TcpListener>, BindError> {
    let mut listeners = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let listener = bind(addr, backlog).map_err(|source| BindError { addr, source })?;
        addr = listener
            .local_addr()
            .map_err(|source| BindError { addr, source })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Bind, then close, a socket on `addr` without `SO_REUSEPORT` (see [`Listeners::claim`]):
/// `AddrInUse` when some socket already listens there.
fn probe(addr: SocketAddr) -> io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // As the real listeners are: an IPv6 wildcard then also meets IPv4 owners.
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())
}

/// Unsent bytes an accepted socket queues in the kernel before a write takes no more: above
/// it, what a client has not read waits in the connection's own buffer, where `max_output`,
/// `write_timeout` and `min_send_rate` see it. Without it, Linux's send-buffer autotuning
/// takes megabytes per connection, and a client reading a large response a byte a second
/// looks idle to the server. The socket is writable again once half of it has gone, so a
/// client that reads at all shows progress every 32 KiB; 64 KiB still keeps a fast link busy
/// between two writable events.
const NOTSENT_LOWAT: u32 = 64 * 1024;

/// Bind one `SO_REUSEPORT` listener. An IPv6 wildcard address also accepts IPv4 (dual-stack).
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt here instead of
    // one per connection.
    socket.set_nodelay(true)?;
    crate::os::sys::set_notsent_lowat(&socket, NOTSENT_LOWAT)?;
    socket.bind(&addr.into())?;
    // The kernel silently caps the backlog at net.core.somaxconn.
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_binds_every_listener_to_one_port() {
        let listeners = bind_all("127.0.0.1:0".parse().unwrap(), 3, 16).unwrap();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert!(
            ports[0] != 0 && ports.iter().all(|&p| p == ports[0]),
            "{ports:?}"
        );
    }

    #[test]
    fn accepted_sockets_inherit_nodelay_and_the_unsent_limit() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
        assert_eq!(
            crate::os::sys::notsent_lowat(&accepted).unwrap(),
            NOTSENT_LOWAT
        );
    }

    #[test]
    fn claim_refuses_an_address_shared_by_reuseport() {
        // Another instance's socket: SO_REUSEPORT, listening.
        let other = bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = other.local_addr().unwrap();
        // Without the check, joining it succeeds.
        assert!(Listeners::bind(addr, 1, 16).is_ok());
        let Err(err) = Listeners::claim(addr, 2, 16) else {
            panic!("claimed {addr}, where another socket listens");
        };
        assert_eq!(err.source.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        drop(other);
        let claimed = Listeners::claim(addr, 2, 16).unwrap();
        assert_eq!(claimed.addr, addr);
    }

    #[test]
    fn claim_takes_a_port_whose_connections_are_in_time_wait() {
        let listeners = Listeners::claim("127.0.0.1:0".parse().unwrap(), 1, 16).unwrap();
        let addr = listeners.addr;
        let client = std::net::TcpStream::connect(addr).unwrap();
        listeners.sockets[0].set_nonblocking(false).unwrap();
        let (accepted, _) = listeners.sockets[0].accept().unwrap();
        // The server side closes first, so it is the side left in TIME_WAIT.
        drop(accepted);
        drop(client);
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(listeners);
        assert!(Listeners::claim(addr, 1, 16).is_ok());
    }

    #[test]
    fn a_taken_port_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind_all(addr, 1, 16).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&addr.to_string()) && text.contains("in use"),
            "{text}"
        );
    }
}
