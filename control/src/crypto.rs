//! frp's stream cipher: AES-128 in full-block CFB mode with a PBKDF2-SHA1 key.
//!
//! Matches golib v0.5.1 `crypto/` as used by frp 0.65.0 (`pkg/util/net/conn.go`,
//! `NewCryptoReadWriter`): key = PBKDF2-HMAC-SHA1(password, salt "frp", 64 iterations, 16 bytes);
//! each direction's writer picks a random 16-byte IV and sends it raw before its first
//! ciphertext byte; the keystream then runs continuously for the life of the connection.
//!
//! This module is pure: it transforms byte slices in place. The async stream wrappers that
//! send and read the IV live in `proxies::crypto_stream`.

use aes::Aes128;
use cfb_mode::cipher::KeyIvInit;
use cfb_mode::{BufDecryptor, BufEncryptor};

/// Salt frp sets in `init()` of both `client/service.go` and `server/service.go`.
pub const SALT: &[u8] = b"frp";
/// PBKDF2 iteration count used by golib's `crypto.NewWriter`/`NewReader`.
pub const ITERATIONS: u32 = 64;
/// Length of the IV each writer sends before its ciphertext.
pub const IV_LEN: usize = 16;

/// A derived AES-128 key.
pub type Key = [u8; 16];

/// Derives the 16-byte AES key from a password (frp's `auth.token` or a proxy `secretKey`).
pub fn derive_key(password: &[u8]) -> Key {
    let mut key = [0u8; 16];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, SALT, ITERATIONS, &mut key);
    key
}

/// One direction's encrypting keystream.
pub struct Encryptor(BufEncryptor<Aes128>);

impl Encryptor {
    /// Starts a keystream with `key` and the IV that is sent ahead of the ciphertext.
    pub fn new(key: &Key, iv: &[u8; IV_LEN]) -> Self {
        Self(BufEncryptor::<Aes128>::new(key.into(), iv.into()))
    }

    /// Encrypts `data` in place, continuing the keystream.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.encrypt(data);
    }
}

/// One direction's decrypting keystream.
pub struct Decryptor(BufDecryptor<Aes128>);

impl Decryptor {
    /// Starts a keystream with `key` and the IV read from the peer.
    pub fn new(key: &Key, iv: &[u8; IV_LEN]) -> Self {
        Self(BufDecryptor::<Aes128>::new(key.into(), iv.into()))
    }

    /// Decrypts `data` in place, continuing the keystream.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.decrypt(data);
    }
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encryptor")
    }
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decryptor")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from real frp 0.65.0 (frp-protocol.md §4): token "abc".
    #[test]
    fn key_matches_frp() {
        assert_eq!(
            hex::encode(derive_key(b"abc")),
            "62e5ed67fdd04e5f1f71d779ceb9667f"
        );
    }

    #[test]
    fn streaming_equals_one_shot() {
        let key = derive_key(b"k");
        let iv = [7u8; 16];
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 31) as u8).collect();
        let mut one = plain.clone();
        Encryptor::new(&key, &iv).apply(&mut one);
        let mut pieces = plain.clone();
        let mut enc = Encryptor::new(&key, &iv);
        for chunk in pieces.chunks_mut(7) {
            enc.apply(chunk);
        }
        assert_eq!(one, pieces);
        let mut dec = Decryptor::new(&key, &iv);
        for chunk in pieces.chunks_mut(13) {
            dec.apply(chunk);
        }
        assert_eq!(pieces, plain);
    }
}
