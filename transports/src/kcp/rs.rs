//! Reed-Solomon erasure code over GF(2^8), bit-compatible with klauspost/reedsolomon
//! v1.12.0's default codec (the one kcp-go v5.6.13 creates with `reedsolomon.New(10, 3)`).
//!
//! Field: GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D) and generator 2.
//! Encoding matrix (klauspost `buildMatrix`): the `total × data` Vandermonde matrix
//! `vm[r][c] = r^c` multiplied by the inverse of its top `data × data` square, so the top
//! square is the identity and the bottom `parity` rows produce the parity shards.
//!
//! Why our own code rather than a crate: the construction is ~150 lines, it has to be
//! byte-exact with the Go library (checked against a group captured from the real
//! frpc in `tests/kcp_fec.rs`), and the hot loop is a single 256-entry table row per
//! coefficient, which needs no SIMD to keep up with KCP's packet rates.

use std::sync::OnceLock;

/// Error of the Reed-Solomon codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RsError {
    /// Shard counts outside 1..=256 in total, or zero data shards.
    #[error("invalid shard counts")]
    InvalidShardCount,
    /// Fewer than `data` shards are present.
    #[error("too few shards to reconstruct")]
    TooFewShards,
    /// Shards passed to one call have different lengths.
    #[error("shards have different sizes")]
    ShardSize,
}

/// exp and log tables of GF(2^8)/0x11D (generator 2).
struct Tables {
    exp: [u8; 510],
    log: [u8; 256],
    /// `mul[a][b] = a·b`; 64 KiB, built once.
    mul: Vec<[u8; 256]>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut exp = [0u8; 510];
        let mut log = [0u8; 256];
        let mut x: u16 = 1;
        for i in 0..255 {
            exp[i] = x as u8;
            exp[i + 255] = x as u8;
            log[x as usize] = i as u8;
            x <<= 1;
            if x & 0x100 != 0 {
                x ^= 0x11D;
            }
        }
        let mut mul = vec![[0u8; 256]; 256];
        for (a, row) in mul.iter_mut().enumerate().skip(1) {
            for (b, cell) in row.iter_mut().enumerate().skip(1) {
                *cell = exp[log[a] as usize + log[b] as usize];
            }
        }
        Tables { exp, log, mul }
    })
}

fn gf_mul(a: u8, b: u8) -> u8 {
    tables().mul[a as usize][b as usize]
}

/// `a^n` as klauspost's `galExp` computes it (`0^0 = 1`).
fn gf_exp(a: u8, n: usize) -> u8 {
    if n == 0 {
        return 1;
    }
    if a == 0 {
        return 0;
    }
    let t = tables();
    t.exp[(t.log[a as usize] as usize * n) % 255]
}

fn gf_inv(a: u8) -> u8 {
    // Callers never pass 0 (pivot search guarantees it).
    let t = tables();
    t.exp[(255 - t.log[a as usize] as usize) % 255]
}

/// A dense matrix over GF(2^8), row-major.
type Matrix = Vec<Vec<u8>>;

fn mat_mul(a: &Matrix, b: &Matrix) -> Matrix {
    let cols = b.first().map_or(0, Vec::len);
    a.iter()
        .map(|row| {
            (0..cols)
                .map(|c| {
                    row.iter()
                        .zip(b)
                        .fold(0u8, |acc, (&x, brow)| acc ^ gf_mul(x, brow[c]))
                })
                .collect()
        })
        .collect()
}

/// Inverts a square matrix by Gauss-Jordan elimination; `None` if singular.
fn mat_invert(m: &Matrix) -> Option<Matrix> {
    let n = m.len();
    let mut work: Matrix = m
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let mut w = row.clone();
            w.extend((0..n).map(|c| u8::from(c == r)));
            w
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).find(|&r| work[r][col] != 0)?;
        work.swap(col, pivot);
        let inv = gf_inv(work[col][col]);
        for x in work[col].iter_mut() {
            *x = gf_mul(*x, inv);
        }
        for r in 0..n {
            let f = work[r][col];
            if r != col && f != 0 {
                let pivot_row = work[col].clone();
                for (x, p) in work[r].iter_mut().zip(pivot_row) {
                    *x ^= gf_mul(f, p);
                }
            }
        }
    }
    Some(work.into_iter().map(|row| row[n..].to_vec()).collect())
}

/// `out ^= c · input` (or `out = c · input` when `assign`), byte-wise.
fn mul_add(c: u8, input: &[u8], out: &mut [u8], assign: bool) {
    let row = &tables().mul[c as usize];
    if assign {
        for (o, &i) in out.iter_mut().zip(input) {
            *o = row[i as usize];
        }
    } else {
        for (o, &i) in out.iter_mut().zip(input) {
            *o ^= row[i as usize];
        }
    }
}

/// A systematic Reed-Solomon codec with `data` data shards and `parity` parity shards.
#[derive(Debug, Clone)]
pub struct ReedSolomon {
    data: usize,
    parity: usize,
    /// The full `(data + parity) × data` encoding matrix.
    matrix: Matrix,
}

impl ReedSolomon {
    /// Builds klauspost's default encoding matrix for the given shard counts.
    pub fn new(data: usize, parity: usize) -> Result<Self, RsError> {
        let total = data + parity;
        if data == 0 || parity == 0 || total > 256 {
            return Err(RsError::InvalidShardCount);
        }
        let vm: Matrix = (0..total)
            .map(|r| (0..data).map(|c| gf_exp(r as u8, c)).collect())
            .collect();
        let top: Matrix = vm[..data].to_vec();
        let top_inv = mat_invert(&top).ok_or(RsError::InvalidShardCount)?;
        Ok(ReedSolomon {
            data,
            parity,
            matrix: mat_mul(&vm, &top_inv),
        })
    }

    /// Number of data shards.
    pub fn data_shards(&self) -> usize {
        self.data
    }

    /// Number of parity shards.
    pub fn parity_shards(&self) -> usize {
        self.parity
    }

    /// Computes the parity shards of `data` (all the same length) into `parity`
    /// (resized to that length).
    pub fn encode(&self, data: &[&[u8]], parity: &mut [Vec<u8>]) -> Result<(), RsError> {
        if data.len() != self.data || parity.len() != self.parity {
            return Err(RsError::InvalidShardCount);
        }
        let len = data[0].len();
        if data.iter().any(|d| d.len() != len) {
            return Err(RsError::ShardSize);
        }
        for (p, out) in parity.iter_mut().enumerate() {
            out.clear();
            out.resize(len, 0);
            let row = &self.matrix[self.data + p];
            for (d, input) in data.iter().enumerate() {
                mul_add(row[d], input, out, d == 0);
            }
        }
        Ok(())
    }

    /// Rebuilds the missing data shards in place. `shards` holds `data + parity`
    /// entries, `None` for a lost shard; every present shard must have the same length.
    /// Missing parity shards are left `None`.
    pub fn reconstruct_data(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), RsError> {
        if shards.len() != self.data + self.parity {
            return Err(RsError::InvalidShardCount);
        }
        let mut len = None;
        for s in shards.iter().flatten() {
            if *len.get_or_insert(s.len()) != s.len() {
                return Err(RsError::ShardSize);
            }
        }
        if shards[..self.data].iter().all(Option::is_some) {
            return Ok(());
        }
        let len = len.ok_or(RsError::TooFewShards)?;
        // The first `data` present shards and their matrix rows.
        let picked: Vec<usize> = (0..shards.len())
            .filter(|&i| shards[i].is_some())
            .take(self.data)
            .collect();
        if picked.len() < self.data {
            return Err(RsError::TooFewShards);
        }
        let sub: Matrix = picked.iter().map(|&i| self.matrix[i].clone()).collect();
        let decode = mat_invert(&sub).ok_or(RsError::TooFewShards)?;
        let missing: Vec<usize> = (0..self.data).filter(|&i| shards[i].is_none()).collect();
        for &m in &missing {
            let mut out = vec![0u8; len];
            for (j, &src) in picked.iter().enumerate() {
                if let Some(input) = shards[src].as_deref() {
                    mul_add(decode[m][j], input, &mut out, false);
                }
            }
            shards[m] = Some(out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_tables_match_klauspost() {
        // First entries of klauspost's expTable (galois.go).
        let t = tables();
        assert_eq!(&t.exp[..10], &[1, 2, 4, 8, 16, 32, 64, 128, 0x1d, 0x3a]);
        assert_eq!(gf_mul(3, 0x80), 0x9d);
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1);
        }
    }

    #[test]
    fn top_of_matrix_is_identity() {
        let rs = ReedSolomon::new(10, 3).unwrap();
        for r in 0..10 {
            for c in 0..10 {
                assert_eq!(rs.matrix[r][c], u8::from(r == c));
            }
        }
    }

    #[test]
    fn encode_then_recover_each_loss_pattern() {
        let rs = ReedSolomon::new(10, 3).unwrap();
        let data: Vec<Vec<u8>> = (0..10u8)
            .map(|i| (0..33u8).map(|j| i.wrapping_mul(31) ^ j).collect())
            .collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity = vec![Vec::new(); 3];
        rs.encode(&refs, &mut parity).unwrap();
        for lost in [[0usize, 5, 9], [1, 2, 12], [3, 10, 11]] {
            let mut shards: Vec<Option<Vec<u8>>> =
                data.iter().chain(&parity).cloned().map(Some).collect();
            for &l in &lost {
                shards[l] = None;
            }
            rs.reconstruct_data(&mut shards).unwrap();
            for i in 0..10 {
                assert_eq!(shards[i].as_ref(), Some(&data[i]));
            }
        }
    }

    #[test]
    fn too_many_losses_fail() {
        let rs = ReedSolomon::new(10, 3).unwrap();
        let mut shards: Vec<Option<Vec<u8>>> = vec![Some(vec![0; 4]); 13];
        for s in shards.iter_mut().take(4) {
            *s = None;
        }
        assert_eq!(rs.reconstruct_data(&mut shards), Err(RsError::TooFewShards));
    }
}
