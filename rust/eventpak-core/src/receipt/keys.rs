//! Receipt keys: Ed25519 signing keys (32-byte seeds), their public keys and key ids, and
//! the set of keys one store signs with and accepts.

use std::fmt;
use std::sync::Arc;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::{ReceiptError, SIGNATURE_LEN};
use crate::error::{Error, Result};

/// Bytes of a signing key: an Ed25519 seed.
pub const SIGNING_KEY_LEN: usize = 32;
/// Bytes of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Bytes of a key id.
pub const KEY_ID_LEN: usize = 16;

/// The first 16 bytes of the Blake3 hash of a public key: what a receipt names its key by.
pub type KeyId = [u8; KEY_ID_LEN];

/// A fresh signing key (32 random bytes from the operating system).
pub fn generate_signing_key() -> Result<[u8; SIGNING_KEY_LEN]> {
    let mut seed = [0u8; SIGNING_KEY_LEN];
    getrandom::fill(&mut seed).map_err(|e| Error::Internal(format!("no randomness from the OS: {e}")))?;
    Ok(seed)
}

/// The public key of a signing key (a 32-byte seed).
pub fn public_key(signing_key: &[u8]) -> std::result::Result<[u8; PUBLIC_KEY_LEN], ReceiptError> {
    Ok(ReceiptSigner::from_seed(signing_key)?.public_key())
}

/// The key id of a public key.
pub fn key_id(public_key: &[u8; PUBLIC_KEY_LEN]) -> KeyId {
    blake3::hash(public_key).as_bytes()[..KEY_ID_LEN].try_into().expect("16 of 32 bytes")
}

/// Parses a public key: 32 bytes that decode to a point of the curve that is not of small
/// order (a weak key would let one signature pass for many messages).
pub fn parse_public_key(bytes: &[u8]) -> std::result::Result<VerifyingKey, ReceiptError> {
    let array: &[u8; PUBLIC_KEY_LEN] =
        bytes.try_into().map_err(|_| ReceiptError::PublicKeyLength(bytes.len()))?;
    match VerifyingKey::from_bytes(array) {
        Ok(key) if !key.is_weak() => Ok(key),
        _ => Err(ReceiptError::NotAPublicKey),
    }
}

/// True when `signature` is a valid Ed25519 signature of `message` by `key` (strict
/// verification: no malleable or small-order encodings).
pub(crate) fn signature_valid(key: &VerifyingKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    key.verify_strict(message, &Signature::from_bytes(signature)).is_ok()
}

/// A store's signing key. Its `Debug` shows the key id only: the key is never printed.
pub struct ReceiptSigner {
    key: SigningKey,
    key_id: KeyId,
}

impl ReceiptSigner {
    /// The signer of a 32-byte seed.
    pub fn from_seed(seed: &[u8]) -> std::result::Result<Self, ReceiptError> {
        let seed: &[u8; SIGNING_KEY_LEN] =
            seed.try_into().map_err(|_| ReceiptError::SeedLength(seed.len()))?;
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(&key.verifying_key().to_bytes());
        Ok(ReceiptSigner { key, key_id })
    }

    /// The public key that checks this signer's signatures.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.verifying_key().to_bytes()
    }

    /// The id receipts name this key by.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Signs `message` (Ed25519 is deterministic: the same message gets the same signature).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptSigner").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// The keys of one store: the one it signs new receipts with, if any, and every key whose
/// signatures it accepts (its own and the `verify_keys` of its config, e.g. retired keys).
#[derive(Debug, Default)]
pub(crate) struct ReceiptKeys {
    pub(crate) signer: Option<Arc<ReceiptSigner>>,
    trusted: Vec<(KeyId, VerifyingKey)>,
}

impl ReceiptKeys {
    /// The keys of a config: an optional seed and public keys to accept.
    pub(crate) fn new(
        signing_key: Option<&[u8]>,
        verify_keys: &[Vec<u8>],
    ) -> std::result::Result<Self, ReceiptError> {
        let signer = signing_key.map(ReceiptSigner::from_seed).transpose()?.map(Arc::new);
        let mut trusted = Vec::with_capacity(verify_keys.len() + 1);
        if let Some(signer) = &signer {
            trusted.push((signer.key_id, signer.key.verifying_key()));
        }
        for bytes in verify_keys {
            let key = parse_public_key(bytes)?;
            trusted.push((key_id(&key.to_bytes()), key));
        }
        Ok(ReceiptKeys { signer, trusted })
    }

    /// The accepted key with this id.
    pub(crate) fn trusted(&self, key_id: &KeyId) -> Option<&VerifyingKey> {
        self.trusted.iter().find(|(id, _)| id == key_id).map(|(_, key)| key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_blake3_of_the_public_key() {
        let signer = ReceiptSigner::from_seed(&[7; 32]).unwrap();
        let public = signer.public_key();
        assert_eq!(public_key(&[7; 32]).unwrap(), public);
        assert_eq!(signer.key_id().as_slice(), &blake3::hash(&public).as_bytes()[..16]);
        assert_ne!(ReceiptSigner::from_seed(&[8; 32]).unwrap().key_id(), signer.key_id());
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(ReceiptSigner::from_seed(&[0; 31]).unwrap_err(), ReceiptError::SeedLength(31));
        assert_eq!(parse_public_key(&[0; 33]).unwrap_err(), ReceiptError::PublicKeyLength(33));
        // The identity point is of small order: a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(parse_public_key(&identity).unwrap_err(), ReceiptError::NotAPublicKey);
        assert!(ReceiptKeys::new(Some(&[1; 32]), &[identity.to_vec()]).is_err());
    }

    #[test]
    fn generated_keys_differ_and_debug_hides_the_key() {
        let (a, b) = (generate_signing_key().unwrap(), generate_signing_key().unwrap());
        assert_ne!(a, b);
        let shown = format!("{:?}", ReceiptSigner::from_seed(&a).unwrap());
        assert!(shown.contains("key_id") && !shown.contains(&format!("{:?}", &a[..4])), "{shown}");
    }

    #[test]
    fn the_store_trusts_its_own_key_and_its_verify_keys() {
        let old = ReceiptSigner::from_seed(&[2; 32]).unwrap();
        let keys = ReceiptKeys::new(Some(&[3; 32]), &[old.public_key().to_vec()]).unwrap();
        let own = keys.signer.as_ref().unwrap().key_id();
        assert!(keys.trusted(&own).is_some() && keys.trusted(&old.key_id()).is_some());
        assert!(keys.trusted(&[0; 16]).is_none());
        let message = b"m";
        let signature = old.sign(message);
        assert!(signature_valid(keys.trusted(&old.key_id()).unwrap(), message, &signature));
        assert!(!signature_valid(keys.trusted(&own).unwrap(), message, &signature));
    }
}
