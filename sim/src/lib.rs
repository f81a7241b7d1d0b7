//! Deterministic network simulation of frp-rs: [`TurmoilNet`] implements the
//! [`transports::Net`] seam on turmoil's simulated network, so the real `frps::run` and
//! `frpc::run` run on simulated hosts with simulated time, loss, latency and partitions.
//! turmoil appears only in this crate; the production crates never see it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use transports::{DatagramSocket, Listener, Net};

/// The turmoil implementation of the socket seam. Each simulated host gets its own value; the
/// sockets it opens belong to the host whose task opens them.
#[derive(Clone, Copy, Debug, Default)]
pub struct TurmoilNet;

impl Net for TurmoilNet {
    type Tcp = turmoil::net::TcpStream;
    type Listener = TurmoilListener;
    type Udp = TurmoilUdp;

    fn connect_tcp(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Self::Tcp>> + Send {
        let host = host.to_owned();
        async move { turmoil::net::TcpStream::connect((host.as_str(), port)).await }
    }

    async fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        let inner = turmoil::net::TcpListener::bind(addr).await?;
        Ok(TurmoilListener { inner })
    }

    async fn bind_udp(&self, addr: SocketAddr) -> io::Result<Self::Udp> {
        Ok(TurmoilUdp(turmoil::net::UdpSocket::bind(addr).await?))
    }
}

/// A simulated TCP listener.
pub struct TurmoilListener {
    inner: turmoil::net::TcpListener,
}

impl Listener for TurmoilListener {
    type Io = turmoil::net::TcpStream;

    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send {
        self.inner.accept()
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A simulated UDP socket.
pub struct TurmoilUdp(turmoil::net::UdpSocket);

impl DatagramSocket for TurmoilUdp {
    fn send_to(
        &self,
        buf: &[u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send {
        self.0.send_to(buf, target)
    }

    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        self.0.recv_from(buf)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
