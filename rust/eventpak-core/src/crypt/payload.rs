//! The AEAD a store seals its payloads with, and what a sealed payload is bound to.
//!
//! A store keeps the cipher it was made with; its key file's version names it
//! ([`PayloadSuite`]). Stores made now use AES-256-GCM; stores made before it keep
//! AES-256-GCM-SIV. Either way a payload is sealed under its entity's data key with a
//! random 96-bit nonce drawn from the operating system ([`super::sealer`]).
//!
//! AES-256-GCM runs on `ring`'s implementation, which opens a small payload in about half
//! the time of the portable RustCrypto build (it picks its AES-NI/VAES and carry-less
//! multiply code at run time, GHASH over several blocks at once); the bytes are the same
//! standard AES-256-GCM either way, which a test checks against RustCrypto's `aes-gcm`.

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::Aes256GcmSiv;
use ring::aead::{Aad as RingAad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
use std::mem::MaybeUninit;
use zeroize::Zeroize;

use super::key_file::{KEY_LEN, TAG_LEN};
use crate::event::EventId;

/// Bytes of a payload nonce (96 bits, for either cipher).
pub const PAYLOAD_NONCE_LEN: usize = 12;
/// Bytes a sealed payload adds to the plaintext: key id, nonce and tag.
pub const SEALED_OVERHEAD: usize = 8 + PAYLOAD_NONCE_LEN + TAG_LEN;
/// Where a sealed payload's ciphertext starts (after its key id and nonce).
pub(super) const BODY_AT: usize = 8 + PAYLOAD_NONCE_LEN;
const PAYLOAD_AAD: &[u8] = b"eventpak payload v1";
/// Associated data up to this long is built on the stack: every entity name up to 77
/// bytes, which is nearly all of them.
const AAD_INLINE: usize = 128;

/// Which AEAD a store's payloads are sealed with; the key file's version says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadSuite {
    /// AES-256-GCM-SIV: key file version 1, the stores made before AES-256-GCM.
    Aes256GcmSiv,
    /// AES-256-GCM: key file version 2, every store made now. It needs a nonce never used
    /// twice under a key, which the random nonces of [`super::sealer`] give (see
    /// `docs/decisions.md`), and seals a small payload in about half the time GCM-SIV
    /// takes: GCM-SIV derives a fresh AES key schedule and hash key for every message.
    Aes256Gcm,
}

impl PayloadSuite {
    /// The suite of a key file of `version`; `None` for a version this build does not know.
    pub fn of_key_file_version(version: u32) -> Option<PayloadSuite> {
        match version {
            1 => Some(PayloadSuite::Aes256GcmSiv),
            2 => Some(PayloadSuite::Aes256Gcm),
            _ => None,
        }
    }

    /// The key file version that names this suite.
    pub fn key_file_version(self) -> u32 {
        match self {
            PayloadSuite::Aes256GcmSiv => 1,
            PayloadSuite::Aes256Gcm => 2,
        }
    }
}

/// One data key's AEAD, built once when the key is loaded or made (the AES key schedule
/// and, for GCM, the hash key) and used for every payload it seals or opens.
// Each cipher lives in an `Arc` of its own, so the enum's size costs nothing; keeping the
// current suite's key inline spares every read one more pointer to follow.
#[allow(clippy::large_enum_variant)]
pub(crate) enum PayloadCipher {
    /// Key file version 1 (boxed: the older stores' cipher should not make every key the
    /// size of its larger key schedule).
    GcmSiv(Box<Aes256GcmSiv>),
    /// Key file version 2.
    Gcm(GcmKey),
}

/// One data key's AES-256-GCM key schedule, wiped when dropped: a forgotten entity's key
/// does not linger in freed memory (`ring` keeps no such promise of its own).
pub(crate) struct GcmKey(MaybeUninit<LessSafeKey>);

impl GcmKey {
    fn new(key: &[u8; KEY_LEN]) -> GcmKey {
        let key = UnboundKey::new(&AES_256_GCM, key).expect("32 bytes are an AES-256 key");
        GcmKey(MaybeUninit::new(LessSafeKey::new(key)))
    }

    fn get(&self) -> &LessSafeKey {
        // SAFETY: written in `new`, and wiped only in `drop`, after the last use.
        unsafe { self.0.assume_init_ref() }
    }
}

impl Drop for GcmKey {
    fn drop(&mut self) {
        // `LessSafeKey` has no drop of its own to skip: it is plain key material.
        self.0.zeroize();
    }
}

/// A payload that did not seal or open (a tag mismatch, on open).
pub(super) struct Failed;

impl PayloadCipher {
    /// The AEAD of `key` for `suite`.
    pub(super) fn new(suite: PayloadSuite, key: &[u8; KEY_LEN]) -> PayloadCipher {
        match suite {
            PayloadSuite::Aes256GcmSiv => PayloadCipher::GcmSiv(Box::new(Aes256GcmSiv::new(key.into()))),
            PayloadSuite::Aes256Gcm => PayloadCipher::Gcm(GcmKey::new(key)),
        }
    }

    /// Encrypts `buf` in place; returns the tag.
    pub(super) fn seal(
        &self,
        nonce: &[u8; PAYLOAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Failed> {
        match self {
            PayloadCipher::GcmSiv(c) => {
                c.encrypt_in_place_detached(nonce.into(), aad, buf).map(Into::into).map_err(|_| Failed)
            }
            PayloadCipher::Gcm(c) => c
                .get()
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), RingAad::from(aad), buf)
                .map(|tag| {
                    let mut out = [0u8; TAG_LEN];
                    out.copy_from_slice(tag.as_ref());
                    out
                })
                .map_err(|_| Failed),
        }
    }

    /// Checks `tag` and decrypts `buf` in place.
    pub(super) fn open(
        &self,
        nonce: &[u8; PAYLOAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Failed> {
        match self {
            PayloadCipher::GcmSiv(c) => {
                c.decrypt_in_place_detached(nonce.into(), aad, buf, tag.into()).map_err(|_| Failed)
            }
            PayloadCipher::Gcm(c) => c
                .get()
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    RingAad::from(aad),
                    Tag::from(*tag),
                    buf,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| Failed),
        }
    }
}

/// What a sealed payload is bound to: its event, so a sealed payload copied onto another
/// event (or another entity) does not open.
#[derive(Clone, Copy, Debug)]
pub struct PayloadBinding<'a> {
    /// The event's entity.
    pub entity: &'a str,
    /// The event's id.
    pub event_id: EventId,
    /// The event's entity clock as its frame stores it.
    pub entity_sequence: u64,
}

/// The associated data of a payload sealed with key `key_id` for the event at `at`:
/// `"eventpak payload v1" | key id | event id | entity clock | entity`. Built on the stack,
/// since it is made for every payload sealed or opened.
pub(super) enum Aad {
    Inline([u8; AAD_INLINE], usize),
    Heap(Vec<u8>),
}

impl Aad {
    pub(super) fn new(key_id: u64, at: &PayloadBinding<'_>) -> Aad {
        let parts: [&[u8]; 5] = [
            PAYLOAD_AAD,
            &key_id.to_le_bytes(),
            &at.event_id,
            &at.entity_sequence.to_le_bytes(),
            at.entity.as_bytes(),
        ];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > AAD_INLINE {
            return Aad::Heap(parts.concat());
        }
        let mut buf = [0u8; AAD_INLINE];
        let mut end = 0;
        for part in parts {
            buf[end..end + part.len()].copy_from_slice(part);
            end += part.len();
        }
        Aad::Inline(buf, end)
    }

    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Aad::Inline(buf, len) => &buf[..*len],
            Aad::Heap(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::Aes256Gcm;

    #[test]
    fn the_associated_data_is_the_same_on_the_stack_and_on_the_heap() {
        let id = [7u8; 16];
        for entity in ["", "acct-00042", &"e".repeat(77), &"e".repeat(78), &"é".repeat(300)] {
            let at = PayloadBinding { entity, event_id: id, entity_sequence: 9 };
            let want =
                [PAYLOAD_AAD, &5u64.to_le_bytes(), &id, &9u64.to_le_bytes(), entity.as_bytes()].concat();
            let aad = Aad::new(5, &at);
            assert_eq!(aad.bytes(), want);
            assert_eq!(matches!(aad, Aad::Inline(..)), want.len() <= AAD_INLINE);
        }
    }

    #[test]
    fn each_suite_is_its_standard_cipher() {
        let key = [3u8; KEY_LEN];
        let (nonce, aad, plain) = ([9u8; PAYLOAD_NONCE_LEN], b"aad".as_slice(), b"a payload".to_vec());
        for suite in [PayloadSuite::Aes256GcmSiv, PayloadSuite::Aes256Gcm] {
            assert_eq!(PayloadSuite::of_key_file_version(suite.key_file_version()), Some(suite));
            let cipher = PayloadCipher::new(suite, &key);
            let mut buf = plain.clone();
            let tag = cipher.seal(&nonce, aad, &mut buf).ok().unwrap();
            let mut direct = plain.clone();
            let want: [u8; TAG_LEN] = match suite {
                PayloadSuite::Aes256GcmSiv => Aes256GcmSiv::new((&key).into())
                    .encrypt_in_place_detached((&nonce).into(), aad, &mut direct)
                    .unwrap()
                    .into(),
                PayloadSuite::Aes256Gcm => Aes256Gcm::new((&key).into())
                    .encrypt_in_place_detached((&nonce).into(), aad, &mut direct)
                    .unwrap()
                    .into(),
            };
            assert_eq!((&buf, tag), (&direct, want), "{suite:?}");
            let mut bad = tag;
            bad[0] ^= 1;
            assert!(cipher.open(&nonce, aad, &mut buf.clone(), &bad).is_err());
            cipher.open(&nonce, aad, &mut buf, &tag).ok().unwrap();
            assert_eq!(buf, plain);
        }
        assert_eq!(PayloadSuite::of_key_file_version(3), None);
    }

    #[test]
    fn a_dropped_gcm_key_leaves_zeros_where_its_schedule_was() {
        let mut slot = std::mem::ManuallyDrop::new(GcmKey::new(&[0x5a; KEY_LEN]));
        let mut buf = *b"a payload";
        let tag = slot.get().seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([1; PAYLOAD_NONCE_LEN]),
            RingAad::empty(),
            &mut buf,
        );
        assert!(tag.is_ok(), "a live key seals");
        // SAFETY: dropped once, then only read as bytes, never used as a key again; the
        // drop wrote every byte (padding included), so each read byte is initialised.
        unsafe { std::mem::ManuallyDrop::drop(&mut slot) };
        let p = (&slot.0 as *const MaybeUninit<LessSafeKey>).cast::<u8>();
        let bytes = unsafe { std::slice::from_raw_parts(p, std::mem::size_of::<LessSafeKey>()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }
}
