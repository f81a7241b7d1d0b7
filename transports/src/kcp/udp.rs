//! The UDP socket under KCP, with batched IO where the OS allows it.
//!
//! KCP moves ~1400-byte datagrams, so one `sendto`/`recvfrom` per datagram made the UDP
//! syscalls (and the per-packet trip through the network stack they imply) the largest
//! cost of a KCP session: ~45 % of frps+frpc CPU in a loopback iperf3 run. On Linux, for
//! the sockets of [`TokioNet`](crate::TokioNet), a session's outgoing datagrams are
//! sent as UDP GSO batches (runs of equal-sized datagrams in one `sendmsg`, split into
//! ordinary datagrams by the kernel or the NIC, so the wire is unchanged) and received
//! with GRO and `recvmmsg`, through quinn-udp (already used by QUIC). Any other
//! [`DatagramSocket`] (the simulator) keeps one call per datagram.
//!
//! quinn-udp also sets the socket to "probe" path-MTU mode (DF set, learned path MTU
//! ignored), which QUIC wants for its own MTU discovery but KCP cannot use: kcp-go lets
//! the kernel fragment datagrams larger than a learned path MTU, so our datagrams of up
//! to 1408 bytes still cross a tunnel with a smaller MTU. The socket's previous mode is
//! restored, and IPv6 sockets (whose "don't fragment" flag quinn-udp also sets and we
//! cannot clear) stay on the per-datagram path.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use super::config::MAX_DATAGRAM;
use crate::net::DatagramSocket;

/// Largest UDP payload of one GSO `sendmsg` (65535 less the IPv4 and UDP headers).
const MAX_GSO_BYTES: usize = 65_507;
/// Receive slots per read with GRO, each large enough for one GRO batch (64 KiB, ~46
/// datagrams of 1400 bytes): 256 KiB per socket, allocated on the first read.
const GRO_SLOTS: usize = 4;
/// Bytes of one GRO receive slot.
const GRO_SLOT: usize = 65_536;
/// Receive slots per read without GRO (`recvmmsg` of single datagrams).
const PLAIN_SLOTS: usize = 32;

/// Outgoing datagrams laid end to end, so that runs of equal size can leave as one GSO
/// batch, and so that queuing a datagram costs no allocation once the buffer has grown.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    data: Vec<u8>,
    lens: Vec<usize>,
}

impl Batch {
    /// Appends one datagram.
    pub(crate) fn push(&mut self, datagram: &[u8]) {
        self.data.extend_from_slice(datagram);
        self.lens.push(datagram.len());
    }

    /// True if no datagram is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Forgets the datagrams, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.lens.clear();
    }

    /// The datagrams, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut at = 0;
        self.lens.iter().map(move |&n| {
            let dg = &self.data[at..at + n];
            at += n;
            dg
        })
    }

    /// Splits the batch into GSO runs: `(bytes, segment size)` where every datagram of a
    /// run has the segment size except possibly the last, which may be shorter, with at
    /// most `max_segments` datagrams and [`MAX_GSO_BYTES`] per run.
    pub(crate) fn runs(&self, max_segments: usize) -> Vec<(&[u8], usize)> {
        let mut runs = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < self.lens.len() {
            let seg = self.lens[i];
            let (mut end, mut count) = (start + seg, 1);
            i += 1;
            while i < self.lens.len()
                && count < max_segments
                && self.lens[i] <= seg
                && end - start + self.lens[i] <= MAX_GSO_BYTES
            {
                end += self.lens[i];
                count += 1;
                i += 1;
                if self.lens[i - 1] < seg {
                    break; // a shorter datagram ends the run
                }
            }
            runs.push((&self.data[start..end], seg));
            start = end;
        }
        runs
    }
}

/// Received datagrams: `(source, bytes)` pairs borrowed from a [`RecvBuf`].
pub(crate) type Received<'a> = Vec<(SocketAddr, &'a [u8])>;

/// A KCP socket: batched on Linux OS sockets, one datagram per call otherwise.
#[derive(Debug)]
pub(crate) enum KcpSocket<S> {
    /// Through quinn-udp (GSO, GRO, `recvmmsg`).
    #[cfg(target_os = "linux")]
    Os(OsSocket),
    /// Through the [`DatagramSocket`] trait.
    Plain(S),
}

/// A tokio UDP socket with quinn-udp's batching state.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct OsSocket {
    io: tokio::net::UdpSocket,
    state: quinn::udp::UdpSocketState,
}

#[cfg(target_os = "linux")]
impl OsSocket {
    /// Sets up batching on an IPv4 socket (see the module docs for IPv6).
    fn new(io: tokio::net::UdpSocket) -> Result<Self, tokio::net::UdpSocket> {
        if !io.local_addr().is_ok_and(|a| a.is_ipv4()) {
            return Err(io);
        }
        let Ok(pmtu) = rustix::net::sockopt::ip_mtu_discover(&io) else {
            return Err(io);
        };
        let Ok(state) = quinn::udp::UdpSocketState::new((&io).into()) else {
            return Err(io);
        };
        if let Err(e) = rustix::net::sockopt::set_ip_mtu_discover(&io, pmtu) {
            tracing::debug!(error = %e, "KCP: cannot restore the path MTU mode; unbatched IO");
            return Err(io);
        }
        Ok(OsSocket { io, state })
    }
}

impl<S: DatagramSocket> KcpSocket<S> {
    /// Wraps a socket from [`Net::bind_udp`](crate::Net::bind_udp): OS sockets of
    /// [`TokioNet`](crate::TokioNet) get batched IO, others are used as they are.
    pub(crate) fn new(socket: S) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            // Recognises tokio's socket type, without consuming `socket` when it is not.
            let mut slot = Some(socket);
            if let Some(tokio_slot) = (&mut slot as &mut dyn std::any::Any)
                .downcast_mut::<Option<tokio::net::UdpSocket>>()
            {
                if let Some(io) = tokio_slot.take() {
                    match OsSocket::new(io) {
                        Ok(os) => return Ok(KcpSocket::Os(os)),
                        Err(io) => *tokio_slot = Some(io),
                    }
                }
            }
            // `slot` is always refilled above; an error rather than a panic path otherwise.
            slot.map(KcpSocket::Plain)
                .ok_or_else(|| io::Error::other("KCP: socket lost while setting up batching"))
        }
        #[cfg(not(target_os = "linux"))]
        Ok(KcpSocket::Plain(socket))
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            #[cfg(target_os = "linux")]
            KcpSocket::Os(os) => os.io.local_addr(),
            KcpSocket::Plain(s) => s.local_addr(),
        }
    }

    /// Sends every datagram of `batch` to `peer`. Send errors are not reported: UDP drops
    /// are KCP's to repair (buffer full, ICMP errors surfacing on the socket).
    pub(crate) async fn send(&self, batch: &Batch, peer: SocketAddr) {
        match self {
            #[cfg(target_os = "linux")]
            KcpSocket::Os(os) => {
                let max = os.state.max_gso_segments().max(1);
                for (contents, seg) in batch.runs(max) {
                    let transmit = quinn::udp::Transmit {
                        destination: peer,
                        ecn: None,
                        contents,
                        segment_size: (contents.len() > seg).then_some(seg),
                        src_ip: None,
                    };
                    loop {
                        if let Err(e) = os.io.writable().await {
                            tracing::trace!(%peer, error = %e, "KCP send failed");
                            break;
                        }
                        let sent = os.io.try_io(tokio::io::Interest::WRITABLE, || {
                            os.state.send((&os.io).into(), &transmit)
                        });
                        match sent {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                            Err(e) => tracing::trace!(%peer, error = %e, "KCP send failed"),
                            Ok(()) => {}
                        }
                        break;
                    }
                }
            }
            KcpSocket::Plain(s) => {
                for dg in batch.iter() {
                    if let Err(e) = s.send_to(dg, peer).await {
                        tracing::trace!(%peer, error = %e, "KCP send failed");
                    }
                }
            }
        }
    }

    /// Waits for datagrams and returns those that one read brought (at least one).
    /// Cancel safe.
    pub(crate) async fn recv<'b>(&self, buf: &'b mut RecvBuf) -> io::Result<Received<'b>> {
        match self {
            #[cfg(target_os = "linux")]
            KcpSocket::Os(os) => {
                let gro = os.state.gro_segments() > 1;
                buf.prepare(gro);
                let count = loop {
                    os.io.readable().await?;
                    let mut slices: Vec<IoSliceMut<'_>> =
                        buf.slots.iter_mut().map(|s| IoSliceMut::new(s)).collect();
                    let res = os.io.try_io(tokio::io::Interest::READABLE, || {
                        os.state.recv((&os.io).into(), &mut slices, &mut buf.metas)
                    });
                    match res {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Err(e),
                    }
                };
                let mut out = Vec::new();
                for (slot, meta) in buf.slots.iter().zip(&buf.metas).take(count) {
                    let data = &slot[..meta.len.min(slot.len())];
                    let stride = if meta.stride == 0 {
                        data.len()
                    } else {
                        meta.stride
                    };
                    for dg in data.chunks(stride.max(1)) {
                        out.push((meta.addr, dg));
                    }
                }
                Ok(out)
            }
            KcpSocket::Plain(s) => {
                buf.prepare(false);
                let slot = &mut buf.slots[0];
                let (n, from) = s.recv_from(slot).await?;
                Ok(vec![(from, &slot[..n])])
            }
        }
    }
}

/// Receive buffers of one socket, reused across reads.
#[derive(Debug, Default)]
pub(crate) struct RecvBuf {
    slots: Vec<Vec<u8>>,
    #[cfg(target_os = "linux")]
    metas: Vec<quinn::udp::RecvMeta>,
}

impl RecvBuf {
    /// Allocates the slots on first use: 4 × 64 KiB with GRO, 32 datagrams without.
    fn prepare(&mut self, gro: bool) {
        if !self.slots.is_empty() {
            return;
        }
        #[cfg(target_os = "linux")]
        let (count, size) = if gro {
            (GRO_SLOTS, GRO_SLOT)
        } else {
            (PLAIN_SLOTS, MAX_DATAGRAM)
        };
        #[cfg(not(target_os = "linux"))]
        let (count, size) = {
            let _ = (gro, GRO_SLOTS, GRO_SLOT, PLAIN_SLOTS);
            (1, MAX_DATAGRAM)
        };
        self.slots = (0..count).map(|_| vec![0u8; size]).collect();
        #[cfg(target_os = "linux")]
        {
            self.metas = vec![quinn::udp::RecvMeta::default(); count];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(lens: &[usize]) -> Batch {
        let mut b = Batch::default();
        for (i, &n) in lens.iter().enumerate() {
            b.push(&vec![i as u8; n]);
        }
        b
    }

    fn run_shape(b: &Batch, max: usize) -> Vec<(usize, usize)> {
        b.runs(max).iter().map(|(d, s)| (d.len(), *s)).collect()
    }

    #[test]
    fn runs_group_equal_sizes_and_end_at_a_shorter_datagram() {
        let b = batch(&[1400, 1400, 1400, 200, 1400, 24, 24]);
        assert_eq!(
            run_shape(&b, 64),
            vec![(4400, 1400), (1424, 1400), (24, 24)]
        );
        let got: Vec<usize> = b.iter().map(<[u8]>::len).collect();
        assert_eq!(got, [1400, 1400, 1400, 200, 1400, 24, 24]);
    }

    #[test]
    fn runs_respect_segment_and_byte_limits() {
        let b = batch(&[1000; 10]);
        assert_eq!(
            run_shape(&b, 4),
            vec![(4000, 1000), (4000, 1000), (2000, 1000)]
        );
        assert_eq!(run_shape(&b, 1).len(), 10);
        let b = batch(&[1400; 100]);
        let runs = run_shape(&b, 64);
        assert!(runs.iter().all(|&(n, _)| n <= MAX_GSO_BYTES));
        assert_eq!(runs.iter().map(|r| r.0).sum::<usize>(), 140_000);
        // A larger datagram after a smaller one starts a new run.
        assert_eq!(
            run_shape(&batch(&[24, 1400]), 64),
            vec![(24, 24), (1400, 1400)]
        );
    }
}
