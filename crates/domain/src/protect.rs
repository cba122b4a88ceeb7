//! Protection of My Numbers at rest (AES-256-GCM sealing and an HMAC-SHA256 blind index) and
//! of the access log (an HMAC-SHA256 key for its chain and an Ed25519 key that signs its
//! checkpoints).
//!
//! The database stores a sealed number (for the rare legitimate read) and a blind index (for
//! equality: duplicate detection and joins against the resident register) but never the digits.
//! Keys live in a key file outside the database; losing it loses the numbers, leaking it alone
//! does not leak them without the database, and vice versa. For the same reason the access
//! log's keys are there too: someone who can write to the database but cannot read the key file
//! can neither forge an entry the chain accepts nor move a signed checkpoint.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::DomainError;

/// The associated data of numbers sealed before they were bound to their rows: it binds a
/// ciphertext to its purpose only. `shikaku keys reseal` re-seals such rows.
const AAD: &[u8] = b"shikaku-my-number/v1";
/// The associated data of a bound seal is this, then the number's blind index: the ciphertext
/// opens only in the row whose index it was sealed for, so one copied into another row (or
/// swapped with it) fails to decrypt instead of showing another person's number.
const AAD_BOUND: &[u8] = b"shikaku-my-number/v2:";
/// The `format` field of the key file.
const KEY_FILE_FORMAT: &str = "shikaku-keys/1";
/// AES-GCM's standard 96-bit nonce.
const NONCE_LEN: usize = 12;

/// The keys of the key file: My Number encryption keys by id and one blind-index key; the
/// access log's chain keys (HMAC-SHA256) and checkpoint signing keys (Ed25519 seeds), each by
/// id, with the current one used for new entries and checkpoints and the older ones kept so
/// that what they protected still verifies.
///
/// All key bytes are wiped on drop, and `Debug` shows only key ids.
pub struct Keyring {
    current: u32,
    encryption: BTreeMap<u32, [u8; 32]>,
    index: KeySet,
    log: KeySet,
    signing: KeySet,
}

/// Keys of one purpose by id, and the current one (none in a key file from before the purpose
/// existed).
#[derive(Default)]
struct KeySet {
    current: Option<u32>,
    keys: BTreeMap<u32, [u8; 32]>,
}

impl KeySet {
    fn generated() -> KeySet {
        KeySet {
            current: Some(1),
            keys: BTreeMap::from([(1, random_key())]),
        }
    }

    /// Adds a random key with id max + 1 and makes it current.
    fn rotate(&mut self) -> u32 {
        let id = self
            .keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .saturating_add(1);
        self.keys.insert(id, random_key());
        self.current = Some(id);
        id
    }

    fn read(
        current: Option<u32>,
        keys: &BTreeMap<String, String>,
        what: &str,
    ) -> Result<KeySet, DomainError> {
        let mut set = KeySet {
            current,
            keys: BTreeMap::new(),
        };
        for (id, b64) in keys {
            let id: u32 = id
                .parse()
                .map_err(|_| DomainError::KeyFile(format!("{what} ids must be whole numbers")))?;
            set.keys
                .insert(id, decode_key(b64, &format!("{what} {id}"))?);
        }
        if let Some(c) = current {
            if !set.keys.contains_key(&c) {
                return Err(DomainError::KeyFile(format!(
                    "current {what} {c} is missing"
                )));
            }
        }
        Ok(set)
    }

    fn written(&self) -> BTreeMap<String, String> {
        self.keys
            .iter()
            .map(|(id, k)| (id.to_string(), B64.encode(k)))
            .collect()
    }
}

impl Drop for KeySet {
    fn drop(&mut self) {
        self.keys.values_mut().for_each(Zeroize::zeroize);
    }
}

/// The on-disk JSON shape of a keyring. The log and signing keys are absent from key files
/// written before they existed; `shikaku keys rotate --log-key --signing-key` adds them.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: String,
    current: u32,
    encryption_keys: BTreeMap<String, String>,
    /// The one index key of key files from before index keys could rotate (read as id 1).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    index_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_index_key: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    index_keys: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_log_key: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    log_keys: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_signing_key: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    signing_keys: BTreeMap<String, String>,
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        self.encryption_keys.values_mut().for_each(Zeroize::zeroize);
        self.index_key.zeroize();
        self.index_keys.values_mut().for_each(Zeroize::zeroize);
        self.log_keys.values_mut().for_each(Zeroize::zeroize);
        self.signing_keys.values_mut().for_each(Zeroize::zeroize);
    }
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    OsRng.fill_bytes(&mut k);
    k
}

/// Decodes one base64 key; errors name the field, never the bytes.
fn decode_key(b64: &str, what: &str) -> Result<[u8; 32], DomainError> {
    let bytes = Zeroizing::new(
        B64.decode(b64.trim())
            .map_err(|_| DomainError::KeyFile(format!("{what} is not valid base64")))?,
    );
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| DomainError::KeyFile(format!("{what} must be 32 bytes")))
}

impl Keyring {
    /// A fresh keyring with random keys from the OS; the encryption key has id 1.
    pub fn generate() -> Keyring {
        Keyring {
            current: 1,
            encryption: BTreeMap::from([(1, random_key())]),
            index: KeySet::generated(),
            log: KeySet::generated(),
            signing: KeySet::generated(),
        }
    }

    /// Reads the key file format:
    /// `{"format":"shikaku-keys/1","current":1,"encryption_keys":{"1":"<base64>"},"index_key":"<base64>"}`
    /// with 32-byte keys. Errors never contain key material.
    pub fn from_json(s: &str) -> Result<Keyring, DomainError> {
        // serde_json's messages can quote the offending value, which could be a key, so only
        // the error category and position are passed on.
        let file: KeyFile = serde_json::from_str(s).map_err(|e| {
            DomainError::KeyFile(format!(
                "not a shikaku key file ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if file.format != KEY_FILE_FORMAT {
            return Err(DomainError::KeyFile(format!(
                "format must be \"{KEY_FILE_FORMAT}\""
            )));
        }
        let mut index = KeySet::read(file.current_index_key, &file.index_keys, "index key")?;
        if !file.index_key.is_empty() {
            index
                .keys
                .entry(1)
                .or_insert(decode_key(&file.index_key, "index_key")?);
            index.current.get_or_insert(1);
        }
        if index.current.is_none() {
            return Err(DomainError::KeyFile("the key file has no index key".into()));
        }
        let mut ring = Keyring {
            current: file.current,
            encryption: BTreeMap::new(),
            index,
            log: KeySet::read(file.current_log_key, &file.log_keys, "log key")?,
            signing: KeySet::read(file.current_signing_key, &file.signing_keys, "signing key")?,
        };
        for (id, b64) in &file.encryption_keys {
            let id: u32 = id.parse().map_err(|_| {
                DomainError::KeyFile("encryption key ids must be whole numbers".into())
            })?;
            ring.encryption
                .insert(id, decode_key(b64, &format!("encryption key {id}"))?);
        }
        if !ring.encryption.contains_key(&ring.current) {
            return Err(DomainError::KeyFile(format!(
                "current key id {} has no encryption key",
                ring.current
            )));
        }
        Ok(ring)
    }

    /// The key file as pretty JSON. The result holds every key: write it only to a protected
    /// file.
    pub fn to_json(&self) -> String {
        let file = KeyFile {
            format: KEY_FILE_FORMAT.to_owned(),
            current: self.current,
            encryption_keys: self
                .encryption
                .iter()
                .map(|(id, k)| (id.to_string(), B64.encode(k)))
                .collect(),
            index_key: String::new(),
            current_index_key: self.index.current,
            index_keys: self.index.written(),
            current_log_key: self.log.current,
            log_keys: self.log.written(),
            current_signing_key: self.signing.current,
            signing_keys: self.signing.written(),
        };
        // Serializing string maps and numbers cannot fail; the fallback only avoids a panic.
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }

    /// Adds a random encryption key with id max + 1, makes it current, and returns its id.
    ///
    /// Older keys stay so that rows sealed under them still open. The index key does not
    /// change with it: blind indexes must stay equal for equal numbers, or duplicate detection
    /// and register matching would miss every number sealed before; the index key rotates on
    /// its own ([`Keyring::rotate_index_key`]), with every stored index recomputed.
    pub fn rotate(&mut self) -> u32 {
        let id = self
            .encryption
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .saturating_add(1);
        self.encryption.insert(id, random_key());
        self.current = id;
        id
    }

    /// The id of the key new seals use.
    pub fn current_key_id(&self) -> u32 {
        self.current
    }

    /// The ids of every encryption key held, oldest first.
    pub fn key_ids(&self) -> Vec<u32> {
        self.encryption.keys().copied().collect()
    }

    fn cipher(&self, id: u32) -> Option<Aes256Gcm> {
        self.encryption
            .get(&id)
            .map(|k| Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(k)))
    }

    /// Encrypts `digits` (12 ASCII digits, e.g. from `LinkedNumber::expose_digits`) under the
    /// current key with a random 96-bit nonce, bound to the number's blind index under the
    /// current index key (the one stored beside it). The ciphertext is nonce ‖ AES-GCM output.
    pub fn seal(&self, digits: &str) -> SealedNumber {
        let blind = self.blind_index(digits);
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        // Every constructor and `rotate` keep `current` among the keys, so this cannot fail.
        let cipher = self
            .cipher(self.current)
            .expect("keyring invariant: the current key id has a key");
        let aad = bound_aad(&blind);
        let payload = Payload {
            msg: digits.as_bytes(),
            aad: &aad,
        };
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut ciphertext = Vec::with_capacity(NONCE_LEN + ct.len());
        ciphertext.extend_from_slice(&nonce);
        ciphertext.extend_from_slice(&ct);
        SealedNumber {
            key_id: self.current,
            ciphertext,
            bound: true,
        }
    }

    /// Seals `digits` as numbers were sealed before row binding (purpose-only associated
    /// data): for tests of the upgrade path only.
    #[cfg(feature = "testing")]
    pub fn seal_unbound(&self, digits: &str) -> SealedNumber {
        let nonce = [7u8; NONCE_LEN];
        let cipher = self
            .cipher(self.current)
            .expect("keyring invariant: the current key id has a key");
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: digits.as_bytes(),
                    aad: AAD,
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        SealedNumber {
            key_id: self.current,
            ciphertext: [nonce.to_vec(), ct].concat(),
            bound: false,
        }
    }

    /// Decrypts the number sealed in a row whose blind index is `blind`, with the key the seal
    /// names. Fails on an unknown key id, on any tampering, and when the number is not the one
    /// the row's index says (a ciphertext copied from another row); errors never contain the
    /// number.
    pub fn open(
        &self,
        sealed: &SealedNumber,
        blind: &BlindIndex,
    ) -> Result<Zeroizing<String>, DomainError> {
        let cipher = self
            .cipher(sealed.key_id)
            .ok_or(DomainError::UnknownKeyId(sealed.key_id))?;
        if sealed.ciphertext.len() < NONCE_LEN {
            return Err(DomainError::DecryptionFailed);
        }
        let (nonce, ct) = sealed.ciphertext.split_at(NONCE_LEN);
        let aad = if sealed.bound {
            bound_aad(blind)
        } else {
            AAD.to_vec()
        };
        let plain = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
                .map_err(|_| DomainError::DecryptionFailed)?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| DomainError::DecryptionFailed)?;
        // An unbound (older) seal proves nothing about its row: the index must match.
        if !self.blind_indexes(text).contains(blind) {
            return Err(DomainError::DecryptionFailed);
        }
        Ok(Zeroizing::new(text.to_owned()))
    }

    /// HMAC-SHA256 of `digits` under the index key: equal numbers give equal indexes, and the
    /// index reveals nothing without the key (a plain hash of 10^11 candidates is brute-forced
    /// in minutes).
    ///
    /// Under the current index key: what is stored for a new number.
    pub fn blind_index(&self, digits: &str) -> BlindIndex {
        let id = self.index_key_id();
        self.blind_index_with(id, digits)
            .expect("keyring invariant: the current index key exists")
    }

    /// The blind index of `digits` under index key `id`, if the keyring holds it.
    pub fn blind_index_with(&self, id: u32, digits: &str) -> Option<BlindIndex> {
        let key = self.index.keys.get(&id)?;
        // HMAC accepts keys of any length, so this never fails.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(digits.as_bytes());
        Some(BlindIndex(mac.finalize().into_bytes().into()))
    }

    /// Whether the keyring holds index key `id`: blind indexes stored under it (an older
    /// register snapshot, say) can be matched only then.
    pub fn holds_index_key(&self, id: u32) -> bool {
        self.index.keys.contains_key(&id)
    }

    /// The blind index of `digits` under every index key held, current first: what a lookup
    /// compares with, so that rows not yet re-indexed after a rotation are still found.
    pub fn blind_indexes(&self, digits: &str) -> Vec<BlindIndex> {
        let current = self.index_key_id();
        std::iter::once(current)
            .chain(self.index.keys.keys().copied().filter(|id| *id != current))
            .filter_map(|id| self.blind_index_with(id, digits))
            .collect()
    }

    /// The id of the index key new blind indexes use.
    pub fn index_key_id(&self) -> u32 {
        self.index.current.unwrap_or(1)
    }

    /// Adds a new index key and makes it current (stored indexes must then be recomputed:
    /// `shikaku keys rotate-index`); returns its id. Older index keys stay so that rows not yet
    /// re-indexed, and older register snapshots, can still be matched.
    pub fn rotate_index_key(&mut self) -> u32 {
        self.index.rotate()
    }
}

impl Keyring {
    /// Adds a new access-log chain key, makes it current (new entries use it; entries under
    /// older keys still verify) and returns its id.
    pub fn rotate_log_key(&mut self) -> u32 {
        self.log.rotate()
    }

    /// Adds a new checkpoint signing key, makes it current and returns its id.
    pub fn rotate_signing_key(&mut self) -> u32 {
        self.signing.rotate()
    }

    /// The id of the key new access-log entries are chained with; `None` in a key file from
    /// before the access log was keyed.
    pub fn log_key_id(&self) -> Option<u32> {
        self.log.current
    }

    /// The id of the key new checkpoints are signed with.
    pub fn signing_key_id(&self) -> Option<u32> {
        self.signing.current
    }

    /// HMAC-SHA256 under log key `key_id` over `parts` in order: the link of an access-log
    /// entry to the one before it.
    pub fn log_mac(&self, key_id: u32, parts: &[&[u8]]) -> Result<[u8; 32], DomainError> {
        let key = self
            .log
            .keys
            .get(&key_id)
            .ok_or(DomainError::UnknownKeyId(key_id))?;
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
        for p in parts {
            mac.update(p);
        }
        Ok(mac.finalize().into_bytes().into())
    }

    /// Signs `message` with the current signing key: its id and the Ed25519 signature.
    pub fn sign(&self, message: &[u8]) -> Result<(u32, [u8; 64]), DomainError> {
        let id = self.signing.current.ok_or_else(|| {
            DomainError::KeyFile(
                "the key file has no signing key: run `shikaku keys rotate --signing-key`".into(),
            )
        })?;
        let seed = self
            .signing
            .keys
            .get(&id)
            .ok_or(DomainError::UnknownKeyId(id))?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        Ok((id, ed25519_dalek::Signer::sign(&key, message).to_bytes()))
    }

    /// Whether `signature` is signing key `key_id`'s signature of `message`.
    pub fn verify_signature(&self, key_id: u32, message: &[u8], signature: &[u8; 64]) -> bool {
        let Some(seed) = self.signing.keys.get(&key_id) else {
            return false;
        };
        let key = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key();
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
            .is_ok()
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        // The key sets wipe themselves.
        self.encryption.values_mut().for_each(Zeroize::zeroize);
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &self.key_ids())
            .field("log_key", &self.log.current)
            .field("signing_key", &self.signing.current)
            .finish_non_exhaustive()
    }
}

/// A My Number encrypted under the keyring key `key_id`: nonce ‖ ciphertext ‖ tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedNumber {
    /// The encryption key it was sealed with.
    pub key_id: u32,
    /// 12-byte nonce, then the AES-GCM ciphertext and 16-byte tag.
    pub ciphertext: Vec<u8>,
    /// Sealed bound to its blind index (every seal since row binding); `false` for older
    /// seals, which `shikaku keys reseal` replaces.
    pub bound: bool,
}

/// The associated data binding a seal to the blind index of its row.
fn bound_aad(blind: &BlindIndex) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_BOUND.len() + 32);
    aad.extend_from_slice(AAD_BOUND);
    aad.extend_from_slice(blind.as_bytes());
    aad
}

/// HMAC-SHA256 of a My Number: lets the database compare numbers without holding them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlindIndex(pub [u8; 32]);

impl BlindIndex {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell indexes apart in logs without printing a full lookup key.
        let prefix: String = self.0[..4].iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "BlindIndex({prefix}…)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const N: &str = "123456789018";

    #[test]
    fn seal_open_round_trip() {
        let k = Keyring::generate();
        let s = k.seal(N);
        assert_eq!(s.key_id, 1);
        assert_eq!(s.ciphertext.len(), 12 + 12 + 16);
        assert!(!s.ciphertext.windows(N.len()).any(|w| w == N.as_bytes()));
        assert_eq!(k.open(&s, &k.blind_index(N)).unwrap().as_str(), N);
        // Random nonces: the same number seals differently each time.
        assert_ne!(k.seal(N).ciphertext, s.ciphertext);
    }

    #[test]
    fn tampering_is_detected() {
        let k = Keyring::generate();
        let s = k.seal(N);
        for i in 0..s.ciphertext.len() {
            let mut t = s.clone();
            t.ciphertext[i] ^= 0x01;
            assert_eq!(
                k.open(&t, &k.blind_index(N)),
                Err(DomainError::DecryptionFailed),
                "byte {i}"
            );
        }
        let mut short = s.clone();
        short.ciphertext.truncate(5);
        assert_eq!(
            k.open(&short, &k.blind_index(N)),
            Err(DomainError::DecryptionFailed)
        );
        let mut unknown = s.clone();
        unknown.key_id = 9;
        assert_eq!(
            k.open(&unknown, &k.blind_index(N)),
            Err(DomainError::UnknownKeyId(9))
        );
        // Another keyring's key fails too.
        assert_eq!(
            Keyring::generate().open(&s, &k.blind_index(N)),
            Err(DomainError::DecryptionFailed)
        );
    }

    #[test]
    fn rotation_keeps_old_rows_readable() {
        let mut k = Keyring::generate();
        let old = k.seal(N);
        let idx = k.blind_index(N);
        assert_eq!(k.rotate(), 2);
        assert_eq!(k.current_key_id(), 2);
        let new = k.seal(N);
        assert_eq!(new.key_id, 2);
        assert_eq!(k.open(&old, &k.blind_index(N)).unwrap().as_str(), N);
        assert_eq!(k.open(&new, &k.blind_index(N)).unwrap().as_str(), N);
        assert_eq!(k.blind_index(N), idx);
        assert_eq!(k.rotate(), 3);
        assert_eq!(k.key_ids(), vec![1, 2, 3]);
    }

    #[test]
    fn a_ciphertext_opens_only_in_its_own_row() {
        let k = Keyring::generate();
        const OTHER: &str = "987654321093";
        let mine = k.seal(N);
        // Copied into the row of another number (with that row's index): refused.
        assert_eq!(
            k.open(&mine, &k.blind_index(OTHER)),
            Err(DomainError::DecryptionFailed)
        );
        // An older, unbound seal opens only where the index matches its number.
        let mut old = mine.clone();
        let legacy_cipher = k.cipher(1).unwrap();
        let nonce = [3u8; 12];
        let ct = legacy_cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: N.as_bytes(),
                    aad: AAD,
                },
            )
            .unwrap();
        old.ciphertext = [nonce.to_vec(), ct].concat();
        old.bound = false;
        assert_eq!(k.open(&old, &k.blind_index(N)).unwrap().as_str(), N);
        assert_eq!(
            k.open(&old, &k.blind_index(OTHER)),
            Err(DomainError::DecryptionFailed)
        );
    }

    #[test]
    fn the_index_key_rotates_and_old_indexes_still_match() {
        let mut k = Keyring::generate();
        let before = k.blind_index(N);
        let sealed = k.seal(N);
        assert_eq!(k.rotate_index_key(), 2);
        let after = k.blind_index(N);
        assert_ne!(before, after);
        assert_eq!(k.blind_indexes(N), vec![after, before]);
        // A row not yet re-indexed still opens with its old index.
        assert_eq!(k.open(&sealed, &before).unwrap().as_str(), N);
        let back = Keyring::from_json(&k.to_json()).unwrap();
        assert_eq!(back.index_key_id(), 2);
        assert_eq!(back.blind_indexes(N), vec![after, before]);
    }

    #[test]
    fn blind_index_is_deterministic_and_keyed() {
        let k = Keyring::generate();
        assert_eq!(k.blind_index(N), k.blind_index(N));
        assert_ne!(k.blind_index(N), k.blind_index("987654321093"));
        assert_ne!(Keyring::generate().blind_index(N), k.blind_index(N));
        let i = k.blind_index(N);
        assert_eq!(i.as_bytes().len(), 32);
        assert_eq!(i.to_hex().len(), 64);
        let dbg = format!("{i:?}");
        assert!(dbg.starts_with("BlindIndex(") && dbg.len() < 24, "{dbg}");
    }

    #[test]
    fn blind_index_known_answer() {
        // RFC 4231-style check that the index is plain HMAC-SHA256 over the ASCII digits.
        let json = format!(
            r#"{{"format":"shikaku-keys/1","current":1,"encryption_keys":{{"1":"{z}"}},"index_key":"{z}"}}"#,
            z = B64.encode([0u8; 32])
        );
        let k = Keyring::from_json(&json).unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).unwrap();
        mac.update(N.as_bytes());
        let want: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(k.blind_index(N).0, want);
    }

    #[test]
    fn json_round_trip() {
        let mut k = Keyring::generate();
        k.rotate();
        let sealed_old = {
            let mut j = Keyring::from_json(&k.to_json()).unwrap();
            j.current = 1;
            j.seal(N)
        };
        let json = k.to_json();
        assert!(json.contains("\"format\": \"shikaku-keys/1\""));
        let back = Keyring::from_json(&json).unwrap();
        assert_eq!(back.current_key_id(), 2);
        assert_eq!(back.key_ids(), vec![1, 2]);
        assert_eq!(
            back.open(&sealed_old, &back.blind_index(N))
                .unwrap()
                .as_str(),
            N
        );
        assert_eq!(back.blind_index(N), k.blind_index(N));
        assert_eq!(
            back.open(&k.seal(N), &back.blind_index(N))
                .unwrap()
                .as_str(),
            N
        );
    }

    #[test]
    fn bad_key_files() {
        let z = B64.encode([7u8; 32]);
        let short = B64.encode([7u8; 16]);
        let cases = [
            "not json".to_owned(),
            format!(
                r#"{{"format":"x","current":1,"encryption_keys":{{"1":"{z}"}},"index_key":"{z}"}}"#
            ),
            format!(
                r#"{{"format":"shikaku-keys/1","current":2,"encryption_keys":{{"1":"{z}"}},"index_key":"{z}"}}"#
            ),
            format!(
                r#"{{"format":"shikaku-keys/1","current":1,"encryption_keys":{{"1":"{short}"}},"index_key":"{z}"}}"#
            ),
            format!(
                r#"{{"format":"shikaku-keys/1","current":1,"encryption_keys":{{"a":"{z}"}},"index_key":"{z}"}}"#
            ),
            format!(
                r#"{{"format":"shikaku-keys/1","current":1,"encryption_keys":{{"1":"{z}"}},"index_key":"!!"}}"#
            ),
            format!(
                r#"{{"format":"shikaku-keys/1","current":"{z}","encryption_keys":{{}},"index_key":"{z}"}}"#
            ),
        ];
        for c in &cases {
            let e = Keyring::from_json(c).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, DomainError::KeyFile(_)), "{c}");
            assert!(!msg.contains(&z) && !msg.contains(&short), "{msg}");
        }
    }

    #[test]
    fn debug_never_shows_keys() {
        let k = Keyring::generate();
        let dbg = format!("{k:?}");
        assert_eq!(
            dbg,
            "Keyring { current: 1, key_ids: [1], log_key: Some(1), signing_key: Some(1), .. }"
        );
        let json = k.to_json();
        let file: serde_json::Value = serde_json::from_str(&json).unwrap();
        let key = file["encryption_keys"]["1"].as_str().unwrap();
        assert!(!dbg.contains(key));
    }

    #[test]
    fn log_keys_and_signatures() {
        let mut k = Keyring::generate();
        assert_eq!(k.log_key_id(), Some(1));
        let a = k.log_mac(1, &[b"prev", b"entry"]).unwrap();
        assert_eq!(a, k.log_mac(1, &[b"prev", b"entry"]).unwrap());
        assert_ne!(a, k.log_mac(1, &[b"prev", b"entrY"]).unwrap());
        assert_ne!(
            a,
            Keyring::generate()
                .log_mac(1, &[b"prev", b"entry"])
                .unwrap()
        );
        assert_eq!(k.rotate_log_key(), 2);
        assert_eq!(k.log_key_id(), Some(2));
        // The old key stays, so entries chained with it still verify.
        assert_eq!(a, k.log_mac(1, &[b"prev", b"entry"]).unwrap());
        assert_eq!(k.log_mac(9, &[b"x"]), Err(DomainError::UnknownKeyId(9)));

        let (id, sig) = k.sign(b"checkpoint").unwrap();
        assert_eq!(id, 1);
        assert!(k.verify_signature(1, b"checkpoint", &sig));
        assert!(!k.verify_signature(1, b"checkpoinT", &sig));
        assert_eq!(k.rotate_signing_key(), 2);
        let (id2, sig2) = k.sign(b"checkpoint").unwrap();
        assert_eq!(id2, 2);
        assert!(k.verify_signature(2, b"checkpoint", &sig2));
        assert!(!k.verify_signature(2, b"checkpoint", &sig));
        assert!(k.verify_signature(1, b"checkpoint", &sig));
        // Everything survives the key file.
        let back = Keyring::from_json(&k.to_json()).unwrap();
        assert_eq!(back.log_key_id(), Some(2));
        assert_eq!(back.signing_key_id(), Some(2));
        assert!(back.verify_signature(1, b"checkpoint", &sig));
        assert_eq!(back.log_mac(1, &[b"prev", b"entry"]).unwrap(), a);
    }

    #[test]
    fn a_key_file_from_before_the_log_keys_still_loads() {
        let z = B64.encode([3u8; 32]);
        let old = format!(
            r#"{{"format":"shikaku-keys/1","current":1,"encryption_keys":{{"1":"{z}"}},"index_key":"{z}"}}"#
        );
        let mut k = Keyring::from_json(&old).unwrap();
        assert_eq!(k.log_key_id(), None);
        assert!(k.sign(b"x").is_err());
        assert_eq!(k.rotate_log_key(), 1);
        assert_eq!(k.rotate_signing_key(), 1);
        assert!(k.sign(b"x").is_ok());
        assert!(!k.to_json().contains(&B64.encode([3u8; 16])));
    }
}
