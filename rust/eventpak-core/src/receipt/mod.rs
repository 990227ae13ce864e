//! Append receipts: what an append returns, the canonical bytes a receipt is signed over,
//! and its versioned wire encoding (`docs/format.md`, "Receipt bytes").
//!
//! A signing store does not sign when it issues a receipt: signing costs more than a
//! durable append of a small event, and most receipts are never shown to anyone. The
//! receipt keeps the store's key and the bytes it vouches for, and signs on first use
//! (Ed25519 is deterministic, so the value is the one eager signing would give).

mod keys;

pub use keys::{
    generate_signing_key, key_id, parse_public_key, public_key, KeyId, ReceiptSigner, KEY_ID_LEN,
    PUBLIC_KEY_LEN, SIGNING_KEY_LEN,
};
pub(crate) use keys::{signature_valid, ReceiptKeys};

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::event::{EventId, Hash};

/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Version of the canonical bytes and of the wire encoding.
pub const RECEIPT_VERSION: u8 = 1;

// Canonical (signed) bytes: version, store id, event id, global sequence, entity sequence,
// timestamp, hash, key id. Integers little-endian, like every other eventpak format.
const SIGNED_LEN: usize = 1 + 16 + 16 + 8 + 8 + 8 + 32 + KEY_ID_LEN;

// Wire encoding: version, flags, then every field at a fixed offset; absent optional
// fields are zeros, so each receipt has exactly one encoding.
const FLAGS_OFFSET: usize = 1;
const STORE_ID_OFFSET: usize = 2;
const EVENT_ID_OFFSET: usize = STORE_ID_OFFSET + 16;
const GLOBAL_SEQUENCE_OFFSET: usize = EVENT_ID_OFFSET + 16;
const ENTITY_SEQUENCE_OFFSET: usize = GLOBAL_SEQUENCE_OFFSET + 8;
const TIMESTAMP_OFFSET: usize = ENTITY_SEQUENCE_OFFSET + 8;
const HASH_OFFSET: usize = TIMESTAMP_OFFSET + 8;
const KEY_ID_OFFSET: usize = HASH_OFFSET + 32;
const SIGNATURE_OFFSET: usize = KEY_ID_OFFSET + KEY_ID_LEN;
/// Length of [`AppendReceipt::to_bytes`].
pub const RECEIPT_BYTES_LEN: usize = SIGNATURE_OFFSET + SIGNATURE_LEN;
const FLAG_DURABLE: u8 = 1;
const FLAG_KEY_ID: u8 = 2;
const FLAG_SIGNATURE: u8 = 4;
const KNOWN_FLAGS: u8 = FLAG_DURABLE | FLAG_KEY_ID | FLAG_SIGNATURE;

/// Malformed receipt bytes or keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Receipt bytes of the wrong length.
    #[error("receipt bytes hold {RECEIPT_BYTES_LEN} bytes, not {0}")]
    Length(usize),
    /// Receipt bytes of a version this build does not know.
    #[error("unknown receipt version {0} (this build reads version {RECEIPT_VERSION})")]
    Version(u8),
    /// Unknown flag bits, or an absent field that is not zeros.
    #[error("malformed receipt bytes: {0}")]
    Malformed(&'static str),
    /// A signing key that is not a 32-byte seed.
    #[error("a signing key is a 32-byte Ed25519 seed, not {0} bytes")]
    SeedLength(usize),
    /// A public key that is not 32 bytes.
    #[error("a public key holds 32 bytes, not {0}")]
    PublicKeyLength(usize),
    /// 32 bytes that are not a usable Ed25519 public key.
    #[error("not an Ed25519 public key (not a curve point, or a weak one)")]
    NotAPublicKey,
}

/// Why a store does not vouch for a receipt (see `Store::verify_receipt`); the first that
/// applies, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptProblem {
    /// The receipt names another store.
    WrongStore,
    /// The event exists but is hidden (its fence was cancelled, or is still open).
    Hidden,
    /// No event has the receipt's id.
    UnknownEvent,
    /// The global or entity sequence differs from the stored event's.
    SequenceMismatch,
    /// The hash or timestamp differs from the stored event's.
    HashMismatch,
    /// The key id is neither the store's signing key nor one of its verify keys (or a
    /// signature names no key).
    UnknownKey,
    /// The signature is missing for a named key, or does not verify.
    BadSignature,
}

impl ReceiptProblem {
    /// The stable reason string of `ReceiptCheck.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptProblem::WrongStore => "wrong store",
            ReceiptProblem::Hidden => "hidden",
            ReceiptProblem::UnknownEvent => "unknown event",
            ReceiptProblem::SequenceMismatch => "sequence mismatch",
            ReceiptProblem::HashMismatch => "hash mismatch",
            ReceiptProblem::UnknownKey => "unknown key",
            ReceiptProblem::BadSignature => "bad signature",
        }
    }
}

/// A receipt's signature. Both kinds of signature are boxed: receipts are made by the
/// thousand (one per appended event), returned and moved, and most stores do not sign,
/// so an unsigned receipt stays small (a signature inline would more than double it).
#[derive(Clone)]
enum SignatureState {
    Absent,
    Known(Box<[u8; SIGNATURE_LEN]>),
    Deferred(Box<DeferredSignature>),
}

/// Signed on first use, over the bytes captured when the receipt was issued (so a receipt
/// edited afterwards never gets the store's signature for the edit).
#[derive(Clone)]
struct DeferredSignature {
    signer: Arc<ReceiptSigner>,
    signed: [u8; SIGNED_LEN],
    value: OnceLock<[u8; SIGNATURE_LEN]>,
}

/// What an append returns: the stored event's position, hash and timestamp, the store's
/// id, and for a signing store the key id and an Ed25519 signature over
/// [`AppendReceipt::signed_bytes`].
#[derive(Clone)]
pub struct AppendReceipt {
    /// Id of the stored event.
    pub event_id: EventId,
    /// Its commit position.
    pub global_sequence: u64,
    /// Its per-entity clock value.
    pub entity_sequence: u64,
    /// Its chain hash.
    pub hash: Hash,
    /// Its timestamp.
    pub timestamp_us: u64,
    /// Whether an fsync covered it when the receipt was made (not signed: it describes the
    /// moment the receipt was made, not the event).
    pub durable: bool,
    /// The id of the store that issued it.
    pub store_id: [u8; 16],
    /// The id of the key that signs it, if any.
    pub key_id: Option<KeyId>,
    signature: SignatureState,
}

impl AppendReceipt {
    /// An unsigned receipt.
    pub fn new(
        store_id: [u8; 16],
        event_id: EventId,
        global_sequence: u64,
        entity_sequence: u64,
        hash: Hash,
        timestamp_us: u64,
        durable: bool,
    ) -> Self {
        let (key_id, signature) = (None, SignatureState::Absent);
        AppendReceipt {
            event_id,
            global_sequence,
            entity_sequence,
            hash,
            timestamp_us,
            durable,
            store_id,
            key_id,
            signature,
        }
    }

    /// This receipt signed by `signer`: its key id is set now, the signature is computed
    /// the first time it is needed.
    pub fn signed_by(mut self, signer: Arc<ReceiptSigner>) -> Self {
        self.sign_with(signer);
        self
    }

    /// Signs this receipt in place with `signer`, as [`AppendReceipt::signed_by`] does.
    pub(crate) fn sign_with(&mut self, signer: Arc<ReceiptSigner>) {
        self.key_id = Some(signer.key_id());
        let signed = self.signed_bytes();
        self.signature =
            SignatureState::Deferred(Box::new(DeferredSignature { signer, signed, value: OnceLock::new() }));
    }

    /// The signature, if the receipt has one (computed now if it was deferred).
    pub fn signature(&self) -> Option<[u8; SIGNATURE_LEN]> {
        match &self.signature {
            SignatureState::Absent => None,
            SignatureState::Known(signature) => Some(**signature),
            SignatureState::Deferred(deferred) => {
                let DeferredSignature { signer, signed, value } = &**deferred;
                Some(*value.get_or_init(|| signer.sign(signed)))
            }
        }
    }

    /// Replaces the signature (a receipt read from elsewhere, or edited).
    pub fn set_signature(&mut self, signature: Option<[u8; SIGNATURE_LEN]>) {
        self.signature = signature.map_or(SignatureState::Absent, |s| SignatureState::Known(Box::new(s)));
    }

    /// The canonical bytes the signature covers: version, store id, event id, global
    /// sequence, entity sequence, timestamp, hash and key id (zeros when none). `durable`
    /// is left out: it says when the receipt was made, not what it vouches for.
    pub fn signed_bytes(&self) -> [u8; SIGNED_LEN] {
        let mut out = [0u8; SIGNED_LEN];
        out[0] = RECEIPT_VERSION;
        out[1..17].copy_from_slice(&self.store_id);
        out[17..33].copy_from_slice(&self.event_id);
        out[33..41].copy_from_slice(&self.global_sequence.to_le_bytes());
        out[41..49].copy_from_slice(&self.entity_sequence.to_le_bytes());
        out[49..57].copy_from_slice(&self.timestamp_us.to_le_bytes());
        out[57..89].copy_from_slice(&self.hash);
        out[89..].copy_from_slice(&self.key_id.unwrap_or_default());
        out
    }

    /// True when the receipt carries a signature by `public_key` that covers its fields.
    /// Needs no store: anyone holding the public key can check a receipt.
    pub fn verify_signature(&self, public_key: &ed25519_dalek::VerifyingKey) -> bool {
        let named = self.key_id == Some(key_id(&public_key.to_bytes()));
        named && self.signature().is_some_and(|s| signature_valid(public_key, &self.signed_bytes(), &s))
    }

    /// The versioned wire encoding of every field, `durable` and the signature included.
    pub fn to_bytes(&self) -> [u8; RECEIPT_BYTES_LEN] {
        let signature = self.signature();
        let mut out = [0u8; RECEIPT_BYTES_LEN];
        out[0] = RECEIPT_VERSION;
        out[FLAGS_OFFSET] = (self.durable as u8 * FLAG_DURABLE)
            | (self.key_id.is_some() as u8 * FLAG_KEY_ID)
            | (signature.is_some() as u8 * FLAG_SIGNATURE);
        out[STORE_ID_OFFSET..EVENT_ID_OFFSET].copy_from_slice(&self.store_id);
        out[EVENT_ID_OFFSET..GLOBAL_SEQUENCE_OFFSET].copy_from_slice(&self.event_id);
        out[GLOBAL_SEQUENCE_OFFSET..ENTITY_SEQUENCE_OFFSET]
            .copy_from_slice(&self.global_sequence.to_le_bytes());
        out[ENTITY_SEQUENCE_OFFSET..TIMESTAMP_OFFSET].copy_from_slice(&self.entity_sequence.to_le_bytes());
        out[TIMESTAMP_OFFSET..HASH_OFFSET].copy_from_slice(&self.timestamp_us.to_le_bytes());
        out[HASH_OFFSET..KEY_ID_OFFSET].copy_from_slice(&self.hash);
        out[KEY_ID_OFFSET..SIGNATURE_OFFSET].copy_from_slice(&self.key_id.unwrap_or_default());
        out[SIGNATURE_OFFSET..].copy_from_slice(&signature.unwrap_or([0; SIGNATURE_LEN]));
        out
    }

    /// Parses [`AppendReceipt::to_bytes`] output. It checks the form only, not the content:
    /// a receipt with altered fields parses (verification is a separate step).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReceiptError> {
        let bytes: &[u8; RECEIPT_BYTES_LEN] =
            bytes.try_into().map_err(|_| ReceiptError::Length(bytes.len()))?;
        if bytes[0] != RECEIPT_VERSION {
            return Err(ReceiptError::Version(bytes[0]));
        }
        let flags = bytes[FLAGS_OFFSET];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(ReceiptError::Malformed("unknown flag bits"));
        }
        let optional = |flag: u8, range: std::ops::Range<usize>| {
            let field = &bytes[range];
            match flags & flag != 0 {
                true => Ok(Some(field)),
                false if field.iter().all(|&b| b == 0) => Ok(None),
                false => Err(ReceiptError::Malformed("an absent key id or signature is not zeros")),
            }
        };
        let key_id = optional(FLAG_KEY_ID, KEY_ID_OFFSET..SIGNATURE_OFFSET)?;
        let signature = optional(FLAG_SIGNATURE, SIGNATURE_OFFSET..RECEIPT_BYTES_LEN)?;
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let mut receipt = AppendReceipt::new(
            bytes[STORE_ID_OFFSET..EVENT_ID_OFFSET].try_into().expect("16 bytes"),
            bytes[EVENT_ID_OFFSET..GLOBAL_SEQUENCE_OFFSET].try_into().expect("16 bytes"),
            u64_at(GLOBAL_SEQUENCE_OFFSET),
            u64_at(ENTITY_SEQUENCE_OFFSET),
            bytes[HASH_OFFSET..KEY_ID_OFFSET].try_into().expect("32 bytes"),
            u64_at(TIMESTAMP_OFFSET),
            flags & FLAG_DURABLE != 0,
        );
        receipt.key_id = key_id.map(|k| k.try_into().expect("16 bytes"));
        receipt.set_signature(signature.map(|s| s.try_into().expect("64 bytes")));
        Ok(receipt)
    }
}

/// Equal when every field is (the signature included, computed if deferred).
impl PartialEq for AppendReceipt {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for AppendReceipt {}

impl fmt::Debug for AppendReceipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signature = match &self.signature {
            SignatureState::Absent => "none",
            SignatureState::Known(_) => "present",
            SignatureState::Deferred(_) => "deferred",
        };
        f.debug_struct("AppendReceipt")
            .field("event_id", &self.event_id)
            .field("global_sequence", &self.global_sequence)
            .field("entity_sequence", &self.entity_sequence)
            .field("hash", &self.hash)
            .field("timestamp_us", &self.timestamp_us)
            .field("durable", &self.durable)
            .field("store_id", &self.store_id)
            .field("key_id", &self.key_id)
            .field("signature", &signature)
            .finish()
    }
}

#[cfg(test)]
mod tests;
