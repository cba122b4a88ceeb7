//! Keys that live only in one process's memory, for data that must wait on disk for a while
//! but never rest there readable: an uploaded CSV between its check and its apply, a mailing
//! PDF until it is downloaded. The sealed file is useless without the key, and the key dies
//! with the process, so whatever a crash leaves behind is noise.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::DomainError;

/// A random AES-256-GCM key, wiped from memory when dropped.
pub struct EphemeralKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EphemeralKey(..)")
    }
}

impl Default for EphemeralKey {
    fn default() -> Self {
        EphemeralKey::new()
    }
}

impl EphemeralKey {
    /// A fresh key from the operating system's random source.
    pub fn new() -> EphemeralKey {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        EphemeralKey(key)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_ref()))
    }

    /// `data` encrypted and authenticated: a random 12-byte nonce followed by the ciphertext.
    pub fn seal(&self, data: &[u8]) -> Result<Vec<u8>, DomainError> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), data)
            .map_err(|_| DomainError::DecryptionFailed)?;
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// The data sealed with this key; an error when it was altered or sealed with another key.
    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, DomainError> {
        if sealed.len() < 12 {
            return Err(DomainError::DecryptionFailed);
        }
        let (nonce, ct) = sealed.split_at(12);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), ct)
            .map(Zeroizing::new)
            .map_err(|_| DomainError::DecryptionFailed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_key_and_unaltered() {
        let k = EphemeralKey::new();
        let data = b"my_number,name\n123456789018,x\n";
        let sealed = k.seal(data).unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"123456789018"));
        assert_eq!(k.open(&sealed).unwrap().as_slice(), data);
        assert!(EphemeralKey::new().open(&sealed).is_err());
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(k.open(&bad).is_err());
        assert!(k.open(&sealed[..5]).is_err());
    }
}
