//! kcp-go's forward error correction framing (kcp-go v5.6.13 `fec.go`), sans IO.
//!
//! ```text
//! data shard   : | seqid u32 LE | 0x00F1 u16 LE | size u16 LE = 2 + len(kcp) | kcp bytes |
//! parity shard : | seqid u32 LE | 0x00F2 u16 LE | RS parity of the group's bytes 6.. |
//! ```
//!
//! Every shard, data or parity, takes the next seqid. After each run of `data` data
//! shards the encoder emits `parity` parity shards, computed over the data shards' bytes
//! from offset 6 (size field + KCP bytes) zero-padded to the longest, so each parity
//! datagram is as long as the longest data datagram of its group. Parity is produced only
//! if the last data shard of the group came within `maxFECEncodeLatency` (500 ms) of the
//! one before; otherwise it is skipped **without consuming seqids** (kcp-go quirk), which
//! shifts the group alignment. The decoder follows such shifts (see [`FecDecoder`]).
//!
//! A datagram whose bytes 4..6 are neither 0xF1 nor 0xF2 is raw KCP (kcp-go accepts
//! both; no KCP cmd/frg pair can spell 0x00F1 or 0x00F2).

use std::collections::VecDeque;

use super::rs::{ReedSolomon, RsError};

/// Bytes of the FEC header before the size field.
pub const FEC_HEADER: usize = 6;
/// FEC header plus the 2-byte size field of data shards.
pub const FEC_OVERHEAD: usize = FEC_HEADER + 2;
/// Flag of a data shard.
pub const TYPE_DATA: u16 = 0xF1;
/// Flag of a parity shard.
pub const TYPE_PARITY: u16 = 0xF2;
/// kcp-go's `maxFECEncodeLatency`: parity only if the group's last two data shards are
/// closer than this.
pub const MAX_FEC_ENCODE_LATENCY_MS: u64 = 500;
/// Groups the decoder keeps at once (kcp-go keeps 3 groups' worth of shards).
const MAX_GROUPS: usize = 4;

/// How a received datagram is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing<'a> {
    /// An FEC data shard; the KCP bytes after the 8-byte header.
    Data(&'a [u8]),
    /// An FEC parity shard.
    Parity,
    /// No FEC header: the whole datagram is KCP.
    Raw(&'a [u8]),
    /// Too short to be anything (an FEC flag with fewer than 8 bytes).
    Invalid,
}

/// Classifies a datagram as kcp-go's `packetInput` does.
pub fn classify(datagram: &[u8]) -> Framing<'_> {
    match datagram.get(4..6).map(|f| u16::from_le_bytes([f[0], f[1]])) {
        Some(TYPE_DATA) if datagram.len() >= FEC_OVERHEAD => {
            Framing::Data(&datagram[FEC_OVERHEAD..])
        }
        Some(TYPE_PARITY) if datagram.len() >= FEC_OVERHEAD => Framing::Parity,
        Some(TYPE_DATA | TYPE_PARITY) => Framing::Invalid,
        _ => Framing::Raw(datagram),
    }
}

/// Builds kcp-go's FEC shards from outgoing KCP datagrams.
///
/// Shards are built in buffers kept across calls: encoding allocates nothing once the
/// buffers have grown to the datagram size.
#[derive(Debug)]
pub struct FecEncoder {
    rs: ReedSolomon,
    next: u32,
    /// Seqids wrap (at a parity shard) below this multiple of the group size.
    paws: u32,
    /// Bytes 6.. of the current group's data shards (the first `filled` are in use).
    group: Vec<Vec<u8>>,
    filled: usize,
    parity: Vec<Vec<u8>>,
    /// The shard being handed out.
    scratch: Vec<u8>,
    last_ms: Option<u64>,
}

impl FecEncoder {
    /// An encoder for `data` data and `parity` parity shards per group.
    pub fn new(data: usize, parity: usize) -> Result<Self, RsError> {
        let rs = ReedSolomon::new(data, parity)?;
        let total = (data + parity) as u32;
        Ok(FecEncoder {
            rs,
            next: 0,
            paws: u32::MAX / total * total,
            group: vec![Vec::new(); data],
            filled: 0,
            parity: vec![Vec::new(); parity],
            scratch: Vec::new(),
            last_ms: None,
        })
    }

    /// Frames `kcp` (one KCP datagram) as a data shard and hands it to `out`, followed by
    /// the group's parity shards when this shard completes a group in time. `now_ms` is
    /// a monotonic millisecond clock.
    pub fn encode(&mut self, kcp: &[u8], now_ms: u64, out: &mut impl FnMut(Vec<u8>)) {
        self.encode_with(kcp, now_ms, &mut |shard| out(shard.to_vec()));
    }

    /// [`FecEncoder::encode`] lending each shard instead of allocating it (the shard is
    /// valid during the call only).
    pub fn encode_with(&mut self, kcp: &[u8], now_ms: u64, out: &mut impl FnMut(&[u8])) {
        let size = u16::try_from(kcp.len() + 2).unwrap_or(u16::MAX);
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.next.to_le_bytes());
        self.scratch.extend_from_slice(&TYPE_DATA.to_le_bytes());
        self.scratch.extend_from_slice(&size.to_le_bytes());
        self.scratch.extend_from_slice(kcp);
        self.next = self.next.wrapping_add(1);
        if let Some(slot) = self.group.get_mut(self.filled) {
            slot.clear();
            slot.extend_from_slice(&self.scratch[FEC_HEADER..]);
            self.filled += 1;
        }
        out(&self.scratch);

        if self.filled == self.rs.data_shards() {
            // kcp-go compares against the previous data shard only.
            let in_time = self
                .last_ms
                .is_some_and(|last| now_ms.saturating_sub(last) < MAX_FEC_ENCODE_LATENCY_MS);
            if in_time {
                self.emit_parity(out);
            }
            self.filled = 0;
        }
        self.last_ms = Some(now_ms);
    }

    fn emit_parity(&mut self, out: &mut impl FnMut(&[u8])) {
        let max = self.group.iter().map(Vec::len).max().unwrap_or(0);
        for shard in &mut self.group {
            shard.resize(max, 0);
        }
        let refs: Vec<&[u8]> = self.group.iter().map(Vec::as_slice).collect();
        if self.rs.encode(&refs, &mut self.parity).is_err() {
            return;
        }
        for p in &self.parity {
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.next.to_le_bytes());
            self.scratch.extend_from_slice(&TYPE_PARITY.to_le_bytes());
            self.scratch.extend_from_slice(p);
            self.next = self.next.wrapping_add(1) % self.paws;
            out(&self.scratch);
        }
    }
}

/// One FEC group being collected.
#[derive(Debug)]
struct Group {
    base: u32,
    shards: Vec<Option<Vec<u8>>>,
    present: usize,
    data_present: usize,
    /// All data shards seen or recovered (or the group is unusable): ignore the rest.
    done: bool,
}

/// Recovers lost data shards from parity (kcp-go `fecDecoder`), with bounded memory.
///
/// Groups are `data + parity` consecutive seqids starting at a multiple of the group
/// size plus an alignment offset. The offset starts at 0 (kcp-go's encoder starts at
/// seqid 0) and is re-learnt when a parity shard directly follows a data shard at a
/// position that is not the first parity position (the sender skipped a group's parity).
/// A shard whose type does not fit its position is passed up but not used for recovery.
#[derive(Debug)]
pub struct FecDecoder {
    rs: ReedSolomon,
    total: u32,
    offset: u32,
    last_data: Option<u32>,
    groups: VecDeque<Group>,
}

impl FecDecoder {
    /// A decoder for `data` data and `parity` parity shards per group.
    pub fn new(data: usize, parity: usize) -> Result<Self, RsError> {
        Ok(FecDecoder {
            rs: ReedSolomon::new(data, parity)?,
            total: (data + parity) as u32,
            offset: 0,
            last_data: None,
            groups: VecDeque::with_capacity(MAX_GROUPS + 1),
        })
    }

    fn position(&self, seqid: u32) -> u32 {
        (seqid % self.total + self.total - self.offset) % self.total
    }

    /// Feeds one FEC-framed datagram (data or parity). Each data shard recovered thanks
    /// to it is passed to `recovered` as KCP bytes. Data shards themselves are not
    /// passed up: the caller feeds them to KCP directly, as kcp-go does.
    pub fn decode(&mut self, datagram: &[u8], recovered: &mut impl FnMut(&[u8])) {
        if datagram.len() < FEC_OVERHEAD {
            return;
        }
        let seqid = u32::from_le_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]);
        let is_data = match u16::from_le_bytes([datagram[4], datagram[5]]) {
            TYPE_DATA => true,
            TYPE_PARITY => false,
            _ => return,
        };
        let data = self.rs.data_shards() as u32;
        let mut pos = self.position(seqid);
        if is_data {
            self.last_data = Some(seqid);
            if pos >= data {
                return; // misaligned: wait for the next parity run to realign
            }
        } else if self.last_data == Some(seqid.wrapping_sub(1)) && pos != data {
            // First parity shard of a group at an unexpected place: realign.
            self.offset = (seqid % self.total + self.total - data) % self.total;
            self.groups.clear();
            pos = data;
        } else if pos < data {
            return;
        }
        let base = seqid.wrapping_sub(pos);
        let group = self.group_mut(base);
        if group.done || group.shards[pos as usize].is_some() {
            return;
        }
        group.shards[pos as usize] = Some(datagram[FEC_HEADER..].to_vec());
        group.present += 1;
        if is_data {
            group.data_present += 1;
        }
        self.try_recover(recovered);
    }

    /// The group starting at `base`, created (evicting the oldest) if needed.
    fn group_mut(&mut self, base: u32) -> &mut Group {
        let idx = match self.groups.iter().position(|g| g.base == base) {
            Some(i) => i,
            None => {
                if self.groups.len() >= MAX_GROUPS {
                    self.groups.pop_front();
                }
                self.groups.push_back(Group {
                    base,
                    shards: vec![None; self.total as usize],
                    present: 0,
                    data_present: 0,
                    done: false,
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[idx]
    }

    /// Checks the most recently touched group (always the one just fed).
    fn try_recover(&mut self, recovered: &mut impl FnMut(&[u8])) {
        let data = self.rs.data_shards();
        let Some(group) = self
            .groups
            .iter_mut()
            .find(|g| !g.done && (g.data_present == data || g.present >= data))
        else {
            return;
        };
        group.done = true;
        let mut shards = std::mem::take(&mut group.shards);
        if group.data_present == data {
            return;
        }
        // Parity shards are as long as the longest data shard; a data shard longer than a
        // parity shard means the group is not what we think it is.
        let parity_len = shards[data..]
            .iter()
            .flatten()
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        if shards[data..]
            .iter()
            .flatten()
            .any(|p| p.len() != parity_len)
            || shards[..data]
                .iter()
                .flatten()
                .any(|d| d.len() > parity_len)
        {
            return;
        }
        let missing: Vec<usize> = (0..data).filter(|&i| shards[i].is_none()).collect();
        for s in shards.iter_mut().flatten() {
            s.resize(parity_len, 0);
        }
        if self.rs.reconstruct_data(&mut shards).is_err() {
            return;
        }
        for i in missing {
            let Some(payload) = shards[i].as_deref() else {
                continue;
            };
            let size = usize::from(u16::from_le_bytes([payload[0], payload[1]]));
            if (2..=payload.len()).contains(&size) {
                recovered(&payload[2..size]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_rules() {
        assert_eq!(
            classify(&[0, 0, 0, 0, 0xF1, 0, 2, 0, 9]),
            Framing::Data(&[9])
        );
        assert_eq!(classify(&[0, 0, 0, 0, 0xF2, 0, 1, 2]), Framing::Parity);
        assert_eq!(classify(&[0, 0, 0, 0, 0xF2, 0]), Framing::Invalid);
        assert_eq!(
            classify(&[1, 2, 3, 4, 81, 0]),
            Framing::Raw(&[1, 2, 3, 4, 81, 0])
        );
        assert_eq!(classify(&[1]), Framing::Raw(&[1]));
    }

    #[test]
    fn parity_skipped_when_late_and_seqids_not_consumed() {
        let mut enc = FecEncoder::new(2, 1).unwrap();
        let mut out = Vec::new();
        enc.encode(b"a", 0, &mut |p| out.push(p));
        enc.encode(b"b", 600, &mut |p| out.push(p)); // too late: no parity
        enc.encode_with(b"c", 700, &mut |p| out.push(p.to_vec()));
        enc.encode_with(b"d", 701, &mut |p| out.push(p.to_vec())); // in time: parity
        let seq: Vec<(u32, u8)> = out
            .iter()
            .map(|p| (u32::from_le_bytes([p[0], p[1], p[2], p[3]]), p[4]))
            .collect();
        assert_eq!(
            seq,
            vec![(0, 0xF1), (1, 0xF1), (2, 0xF1), (3, 0xF1), (4, 0xF2)]
        );
    }
}
