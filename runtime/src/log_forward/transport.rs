//! A connection to a log receiver: datagrams keep each message whole;
//! streams carry them back to back (the receivers frame them: syslog by
//! newline, Forward by msgpack).

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::Duration;

use super::Address;

/// A receiver that stops reading must not hold the sender for ever.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Unix(UnixStream),
    Unixgram(UnixDatagram),
}

impl Conn {
    pub fn connect(address: &Address) -> io::Result<Self> {
        match address {
            Address::Udp(host_port) => {
                let target = resolve(host_port)?;
                let bind = if target.is_ipv6() {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let socket = UdpSocket::bind(bind)?;
                socket.connect(target)?;
                Ok(Self::Udp(socket))
            }
            Address::Tcp(host_port) => {
                let stream = TcpStream::connect_timeout(&resolve(host_port)?, IO_TIMEOUT)?;
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Self::Tcp(stream))
            }
            Address::Unix(path) => {
                let stream = UnixStream::connect(path)?;
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(Self::Unix(stream))
            }
            Address::Unixgram(path) => Ok(Self::Unixgram(datagram(path)?)),
            Address::Local(path) => match datagram(path) {
                Ok(socket) => Ok(Self::Unixgram(socket)),
                Err(_) => {
                    let stream = UnixStream::connect(path)?;
                    stream.set_write_timeout(Some(IO_TIMEOUT))?;
                    Ok(Self::Unix(stream))
                }
            },
        }
    }

    pub fn send(&mut self, message: &[u8]) -> io::Result<()> {
        match self {
            Self::Udp(s) => s.send(message).map(drop),
            Self::Unixgram(s) => s.send(message).map(drop),
            Self::Tcp(s) => s.write_all(message),
            Self::Unix(s) => s.write_all(message),
        }
    }
}

fn datagram(path: &std::path::Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    socket.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(socket)
}

fn resolve(host_port: &str) -> io::Result<std::net::SocketAddr> {
    host_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host_port}: no address")))
}
