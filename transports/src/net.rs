//! The socket seam: every TCP and UDP socket of frp-rs is opened through [`Net`].
//!
//! Production code uses [`TokioNet`]; the simulator crate provides a turmoil
//! implementation. Nothing else in the workspace may call `TcpStream::connect`,
//! `TcpListener::bind` or `UdpSocket::bind` directly, otherwise simulated hosts would
//! escape the simulation.
//!
//! The traits use return-position `impl Future + Send` (no `async_trait`), in the style
//! of axum's `Listener`.

use std::any::Any;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional byte stream that can be boxed into a [`BoxStream`].
///
/// The `Any` accessors let a fast path find the concrete stream again after type erasure: the
/// relay forwards with `splice(2)` when both ends of a join turn out to be plain
/// `tokio::net::TcpStream`s (`proxies::splice`). Everyone else treats the stream as bytes.
///
/// A [`BoxStream`] is itself an `AsyncStream`, so on a box call through it, as in
/// `(*stream).as_any()`: `stream.as_any()` with this trait in scope describes the box.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {
    /// The concrete stream, to test its type before [`AsyncStream::into_any`].
    fn as_any(&self) -> &dyn Any;

    /// The concrete stream, to take it out of its box with `downcast`.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncStream for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// The type-erased logical connection handed to the rest of the program: a TCP
/// connection, a TLS session, a yamux stream, ... (erased once at the boundary).
pub type BoxStream = Box<dyn AsyncStream>;

/// A bound TCP listener.
pub trait Listener: Send + 'static {
    /// The accepted connection type.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Accepts one connection.
    ///
    /// Must be cancel safe: dropping the future before it completes must not lose a
    /// connection, so it can be used in a `select!` loop.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;

    /// The address the listener is bound to (useful after binding port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A bound UDP socket.
pub trait DatagramSocket: Send + Sync + 'static {
    /// Sends one datagram to `target`.
    fn send_to(
        &self,
        buf: &[u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send;

    /// Receives one datagram (cancel safe).
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;

    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The OS socket behind this one, for libraries that drive their own IO (quinn for
    /// QUIC). Implementations without real sockets (the simulator) keep the default,
    /// which fails with [`io::ErrorKind::Unsupported`]; QUIC is then unavailable.
    fn into_std(self) -> io::Result<std::net::UdpSocket>
    where
        Self: Sized,
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this network implementation cannot provide an OS UDP socket",
        ))
    }
}

/// Opens sockets. Cheap to clone; one value is shared by a whole frps or frpc instance.
pub trait Net: Clone + Send + Sync + 'static {
    /// A connected TCP stream.
    type Tcp: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A TCP listener yielding [`Net::Tcp`] streams.
    type Listener: Listener<Io = Self::Tcp>;
    /// A UDP socket.
    type Udp: DatagramSocket;

    /// Connects to `host:port`; `host` may be a DNS name or an IP literal. Every address
    /// the name resolves to is tried in turn.
    fn connect_tcp(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Self::Tcp>> + Send;

    /// Binds a TCP listener (`SO_REUSEADDR` set, as Go does on Unix).
    fn bind_tcp(&self, addr: SocketAddr)
        -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// Binds a UDP socket.
    fn bind_udp(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Udp>> + Send;

    /// Resolves `host:port` (DNS name or IP literal) to socket addresses, for the UDP
    /// transports. The default uses the system resolver through tokio.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send {
        let host = host.to_owned();
        async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        }
    }

    /// Enables TCP keepalive probes with the given idle time / interval on `stream`.
    ///
    /// Mirrors Go's `net.Dialer.KeepAlive` / `ListenConfig.KeepAlive`. Implementations
    /// without real sockets (the simulator) keep the default no-op.
    fn set_tcp_keepalive(&self, stream: &Self::Tcp, interval: Duration) -> io::Result<()> {
        let _ = (stream, interval);
        Ok(())
    }

    /// Runs `serve(stream)` as the task of a connection accepted on frps's control port. The
    /// default spawns it on the current runtime. [`TokioNet`] moves it, socket and all, to its
    /// shard when the binary installed shards ([`crate::shard`]): the next in turn, or with
    /// `by_peer` the one `peer`'s IP picks.
    fn spawn_accepted<F, Fut>(&self, stream: Self::Tcp, peer: SocketAddr, by_peer: bool, serve: F)
    where
        F: FnOnce(Self::Tcp) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let _ = (peer, by_peer);
        tokio::spawn(serve(stream));
    }

    /// A random number for the decisions frps and frpc make at random (run ids, port picks,
    /// backoff jitter); callers seed a local generator with it. The default draws from the
    /// OS-seeded thread generator; the simulator overrides it with a generator seeded from the
    /// scenario seed, so a run replays exactly.
    fn random_u64(&self) -> u64 {
        rand::random()
    }
}

/// The real-network [`Net`]: tokio sockets with `TCP_NODELAY` on every TCP stream (Go's
/// default) and `SO_REUSEADDR` on listeners.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioNet;

impl TokioNet {
    /// Creates the real-network implementation.
    pub fn new() -> Self {
        TokioNet
    }
}

/// Listen backlog for TCP listeners (Go uses the kernel's somaxconn; 1024 is a common value).
const LISTEN_BACKLOG: u32 = 1024;

impl Net for TokioNet {
    type Tcp = tokio::net::TcpStream;
    type Listener = TokioListener;
    type Udp = tokio::net::UdpSocket;

    fn connect_tcp(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Self::Tcp>> + Send {
        let host = host.to_owned();
        async move {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            set_nodelay(&stream);
            Ok(stream)
        }
    }

    async fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let inner = socket.listen(LISTEN_BACKLOG)?;
        Ok(TokioListener { inner })
    }

    async fn bind_udp(&self, addr: SocketAddr) -> io::Result<Self::Udp> {
        {
            let socket = tokio::net::UdpSocket::bind(addr).await?;
            // frp asks for 4 MiB socket buffers on its UDP transports (kcp-go `SetReadBuffer` /
            // `SetWriteBuffer`); bursts of a large KCP or QUIC window otherwise overflow the
            // kernel's default and turn into retransmissions. The kernel caps the request at
            // `net.core.{r,w}mem_max`, as it does for Go; failing to raise it is not an error.
            let sock = socket2::SockRef::from(&socket);
            let _ = sock.set_recv_buffer_size(UDP_BUFFER);
            let _ = sock.set_send_buffer_size(UDP_BUFFER);
            Ok(socket)
        }
    }

    fn spawn_accepted<F, Fut>(&self, stream: Self::Tcp, peer: SocketAddr, by_peer: bool, serve: F)
    where
        F: FnOnce(Self::Tcp) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(shards) = crate::shard::installed() else {
            tokio::spawn(serve(stream));
            return;
        };
        let shard = if by_peer {
            shards.for_ip(peer.ip())
        } else {
            shards.next()
        };
        tracing::debug!(
            "connection from {peer} is served on thread {}",
            shard.name()
        );
        if shard.thread() == std::thread::current().id() {
            tokio::spawn(serve(stream));
            return;
        }
        // A tokio socket belongs to the IO driver of the runtime that registered it: take it
        // out of this one and register it again on the shard.
        match stream.into_std() {
            Ok(std_stream) => shard.spawn(async move {
                match tokio::net::TcpStream::from_std(std_stream) {
                    Ok(stream) => serve(stream).await,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "cannot register connection on its shard")
                    }
                }
            }),
            Err(e) => tracing::warn!(%peer, error = %e, "cannot move connection to its shard"),
        }
    }

    fn set_tcp_keepalive(&self, stream: &Self::Tcp, interval: Duration) -> io::Result<()> {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(interval)
            .with_interval(interval);
        socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
    }
}

/// Turns Nagle off, as Go does for every TCP connection it dials or accepts (`net.newTCPConn`).
/// A failure (the peer already reset the connection) is not worth failing the connection, and
/// certainly not an `accept` loop, over: Go ignores it too.
fn set_nodelay(stream: &tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// Socket buffer size requested for UDP sockets (frp: 4 MiB).
const UDP_BUFFER: usize = 4 * 1024 * 1024;

/// The [`Listener`] of [`TokioNet`].
#[derive(Debug)]
pub struct TokioListener {
    inner: tokio::net::TcpListener,
}

impl Listener for TokioListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Io, SocketAddr)> {
        // tokio's accept is cancel safe.
        let (stream, peer) = self.inner.accept().await?;
        set_nodelay(&stream);
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl DatagramSocket for tokio::net::UdpSocket {
    fn send_to(
        &self,
        buf: &[u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send {
        tokio::net::UdpSocket::send_to(self, buf, target)
    }

    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        tokio::net::UdpSocket::recv_from(self, buf)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::UdpSocket::local_addr(self)
    }

    fn into_std(self) -> io::Result<std::net::UdpSocket> {
        tokio::net::UdpSocket::into_std(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn tcp_roundtrip_with_nodelay() {
        let net = TokioNet::new();
        let mut listener = net.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = net.connect_tcp("127.0.0.1", addr.port()).await.unwrap();
            assert!(s.nodelay().unwrap());
            net.set_tcp_keepalive(&s, Duration::from_secs(30)).unwrap();
            s.write_all(b"ping").await.unwrap();
        });
        let (mut s, _) = listener.accept().await.unwrap();
        assert!(s.nodelay().unwrap());
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        client.await.unwrap();
    }

    /// A boxed TCP stream can be found and taken out again (the relay's splice fast path).
    #[tokio::test]
    async fn box_stream_downcasts_to_its_tcp_stream() {
        let net = TokioNet::new();
        let mut listener = net.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) =
            tokio::join!(net.connect_tcp("127.0.0.1", addr.port()), listener.accept());
        let boxed: BoxStream = Box::new(client.unwrap());
        assert!((*boxed).as_any().is::<tokio::net::TcpStream>());
        assert!(boxed.as_any().is::<BoxStream>(), "the box describes itself");
        let tcp = boxed
            .into_any()
            .downcast::<tokio::net::TcpStream>()
            .expect("a TcpStream");
        assert_eq!(tcp.peer_addr().unwrap(), addr);
        let other: BoxStream = Box::new(tokio::io::duplex(64).0);
        assert!(!(*other).as_any().is::<tokio::net::TcpStream>());
        drop(accepted);
    }

    #[tokio::test]
    async fn udp_roundtrip() {
        let net = TokioNet::new();
        let a = net.bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let b = net.bind_udp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        DatagramSocket::send_to(&a, b"x", DatagramSocket::local_addr(&b).unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = DatagramSocket::recv_from(&b, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"x");
        assert_eq!(from, DatagramSocket::local_addr(&a).unwrap());
    }
}
