//! Receipts: signing what appends return, and checking a receipt against the log.

use super::Store;
use crate::error::Result;
use crate::receipt::{signature_valid, AppendReceipt, ReceiptProblem, PUBLIC_KEY_LEN};

impl Store {
    /// `receipt` signed with the store's key when it has one (the signature itself is
    /// computed when first needed), else as it is.
    pub(super) fn sign(&self, receipt: AppendReceipt) -> AppendReceipt {
        match &self.shared.receipt_keys.signer {
            Some(signer) => receipt.signed_by(signer.clone()),
            None => receipt,
        }
    }

    /// The public key this store signs receipts with, if it signs them.
    pub fn receipt_public_key(&self) -> Option<[u8; PUBLIC_KEY_LEN]> {
        self.shared.receipt_keys.signer.as_ref().map(|s| s.public_key())
    }

    /// Whether this store vouches for `receipt`: `None` when it names a visible event of
    /// this store with the same sequences, hash and timestamp, and is either unsigned or
    /// signed by a key the store accepts; otherwise the first [`ReceiptProblem`] that
    /// applies. A bad receipt is an answer, not an error: errors are the store's own
    /// (closed, unreadable segment).
    ///
    /// An unsigned receipt (no key id, no signature) whose content matches is good: the
    /// store itself is the witness. A key id without a signature is a bad signature; a
    /// signature without a key id names no key, so its key is unknown.
    pub fn verify_receipt(&self, receipt: &AppendReceipt) -> Result<Option<ReceiptProblem>> {
        self.check_open()?;
        if receipt.store_id != self.shared.store_id {
            return Ok(Some(ReceiptProblem::WrongStore));
        }
        let seq = {
            let index = self.index()?;
            let Some(seq) = index.sequence_of_any(&receipt.event_id) else {
                return Ok(Some(ReceiptProblem::UnknownEvent));
            };
            let meta = index.entry(seq).expect("indexed sequence");
            if !meta.visible {
                return Ok(Some(ReceiptProblem::Hidden));
            }
            if seq != receipt.global_sequence || meta.entity_sequence != receipt.entity_sequence {
                return Ok(Some(ReceiptProblem::SequenceMismatch));
            }
            seq
        };
        // A compaction may have removed the event since it was found above.
        let stored = self.read_events(&[seq])?;
        let Some(event) = stored.first().map(|e| e.view()) else {
            return Ok(Some(ReceiptProblem::UnknownEvent));
        };
        if event.hash() != receipt.hash || event.timestamp_us() != receipt.timestamp_us {
            return Ok(Some(ReceiptProblem::HashMismatch));
        }
        Ok(self.key_problem(receipt))
    }

    fn key_problem(&self, receipt: &AppendReceipt) -> Option<ReceiptProblem> {
        let signature = receipt.signature();
        let Some(key_id) = receipt.key_id else {
            return signature.map(|_| ReceiptProblem::UnknownKey);
        };
        let Some(key) = self.shared.receipt_keys.trusted(&key_id) else {
            return Some(ReceiptProblem::UnknownKey);
        };
        let valid = signature.is_some_and(|s| signature_valid(key, &receipt.signed_bytes(), &s));
        (!valid).then_some(ReceiptProblem::BadSignature)
    }
}
