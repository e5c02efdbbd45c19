//! Listening sockets: one per worker, all on the same address with `SO_REUSEPORT`, so the
//! kernel spreads new connections over the workers without a shared accept lock.
//!
//! [`Listeners`] is the supervisor's own set of handles on them. It outlives generations of
//! workers, so a reload never closes a socket (and the kernel never resets a connection
//! waiting in its accept queue). Only a change of `listen` binds new sockets; the old ones
//! close once the old generation has drained.

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

    /// Use sockets passed by systemd socket activation.
    pub fn inherited(sockets: Vec<TcpListener>) -> io::Result<Listeners> {
        let addr = sockets[0].local_addr()?;
        for socket in &sockets {
            // Inherited by every accepted socket (see [`bind`]).
            socket2::SockRef::from(socket).set_nodelay(true)?;
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
                " (another process is listening there; pick another --listen)"
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
    fn accepted_sockets_inherit_nodelay() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
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
