//! The UDP socket quinn drives, wrapped so that loopback-sized datagrams work with GSO.
//!
//! On loopback (MTU 65536) we let quinn's MTU discovery climb to ~64 KiB datagrams (see
//! [`super::transport_config`]): one QUIC packet then carries ~50 times the data of a
//! 1200-byte one, which divides quinn's per-packet work (packet building, AEAD and header
//! protection calls, ACK bookkeeping) and the ACK traffic accordingly.
//!
//! quinn itself does not know that one `sendmsg` with UDP GSO may carry at most 64 KiB in
//! total: it batches up to 10 datagrams of the current MTU, and the kernel refuses a
//! batch of 10 × 64 KiB with `EMSGSIZE`, which quinn-udp silently treats as sent (it
//! expects that error only for MTU probes). The packets are then lost, and after three
//! such loss bursts quinn's black-hole detector drops the MTU back to 1200 for a minute.
//! [`GsoSplitSocket`] splits such batches into `sendmsg` calls that fit.
//!
//! It also keeps quinn's receive buffer bounded: quinn sizes it as `max_udp_payload_size ×
//! max_receive_segments × 32`, assuming a GRO batch may hold 64 datagrams of the largest
//! size; the kernel never builds a GRO batch above 64 KiB, so with a large payload size
//! fewer segments are reported (the buffer stays ~4 MiB instead of ~130 MiB).

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// Largest UDP payload one `sendmsg` can carry (IPv4: 65535 − 20-byte IP − 8-byte UDP
/// header; IPv6 allows 20 more, which we do not bother to use).
pub(crate) const MAX_SEND_BYTES: usize = 65_507;

/// Largest GRO batch the kernel delivers in one read (the skb length limit).
const MAX_GRO_BYTES: usize = 65_536;

/// quinn's UDP socket with GSO batches split to fit one `sendmsg` (see the module docs).
pub(crate) struct GsoSplitSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    /// The endpoint's `max_udp_payload_size`: the largest datagram quinn reads.
    max_payload: usize,
}

impl GsoSplitSocket {
    /// Wraps `inner`; `max_payload` is the endpoint's `max_udp_payload_size`.
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>, max_payload: usize) -> Self {
        GsoSplitSocket {
            inner,
            max_payload: max_payload.max(1),
        }
    }
}

impl fmt::Debug for GsoSplitSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GsoSplitSocket")
            .field("inner", &self.inner)
            .finish()
    }
}

/// How many bytes of `t.contents` each `sendmsg` carries when the batch must be split
/// (`None`: it fits as is): whole segments, at most [`MAX_SEND_BYTES`] per call (a single
/// oversized segment still goes alone).
fn split_len(t: &Transmit<'_>) -> Option<usize> {
    let seg = t.segment_size?;
    if seg == 0 || t.contents.len() <= MAX_SEND_BYTES {
        return None;
    }
    Some((MAX_SEND_BYTES / seg).max(1) * seg)
}

impl AsyncUdpSocket for GsoSplitSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let Some(chunk_len) = split_len(transmit) else {
            return self.inner.try_send(transmit);
        };
        let seg = transmit.segment_size.unwrap_or(chunk_len);
        // If a later chunk would block, quinn retries the whole transmit: the chunks already
        // sent arrive twice, and the receiver drops the duplicate packets. That is rare
        // (loopback delivers synchronously) and cheaper than losing them.
        for chunk in transmit.contents.chunks(chunk_len) {
            self.inner.try_send(&Transmit {
                destination: transmit.destination,
                ecn: transmit.ecn,
                contents: chunk,
                segment_size: (chunk.len() > seg).then_some(seg),
                src_ip: transmit.src_ip,
            })?;
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        // quinn gives each read `max_payload × segments` bytes; a GRO batch never exceeds
        // 64 KiB, so that many segments of the largest payload are enough.
        self.inner
            .max_receive_segments()
            .min(MAX_GRO_BYTES.div_ceil(self.max_payload))
            .max(1)
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn transmit(contents: &[u8], segment_size: Option<usize>) -> Transmit<'_> {
        Transmit {
            destination: (Ipv4Addr::LOCALHOST, 1).into(),
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        }
    }

    #[test]
    fn batches_that_fit_are_not_split() {
        let data = vec![0u8; 12_000];
        assert_eq!(split_len(&transmit(&data, Some(1200))), None);
        assert_eq!(split_len(&transmit(&data, None)), None);
        let big = vec![0u8; MAX_SEND_BYTES];
        assert_eq!(split_len(&transmit(&big, Some(1452))), None);
    }

    #[test]
    fn oversized_batches_split_on_segment_boundaries() {
        let data = vec![0u8; 10 * 16_000];
        assert_eq!(split_len(&transmit(&data, Some(16_000))), Some(64_000));
        let data = vec![0u8; 10 * 65_000];
        assert_eq!(split_len(&transmit(&data, Some(65_000))), Some(65_000));
        let data = vec![0u8; 3 * 40_000];
        assert_eq!(split_len(&transmit(&data, Some(40_000))), Some(40_000));
    }
}
