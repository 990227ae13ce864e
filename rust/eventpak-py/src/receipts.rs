//! Receipt keys and checks: making a signing key, its public key, checking a receipt's
//! signature offline, and asking a store whether it vouches for a receipt.

use eventpak_core::{parse_public_key, ReceiptError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::args::BytesArg;
use crate::errors::{to_py, InvalidArgument};
use crate::event::AppendReceipt;
use crate::store::NativeStore;

fn refused(argument: &str, e: ReceiptError) -> PyErr {
    InvalidArgument::new_err((argument.to_owned(), e.to_string()))
}

/// A new Ed25519 signing key: 32 random bytes from the operating system.
#[pyfunction]
pub fn generate_signing_key(py: Python<'_>) -> PyResult<Bound<'_, PyBytes>> {
    let seed = eventpak_core::generate_signing_key().map_err(|e| to_py(e, ""))?;
    Ok(PyBytes::new(py, &seed))
}

/// The 32-byte public key of a signing key.
#[pyfunction]
pub fn public_key<'py>(py: Python<'py>, signing_key: BytesArg) -> PyResult<Bound<'py, PyBytes>> {
    let public = eventpak_core::public_key(&signing_key.0).map_err(|e| refused("signing_key", e))?;
    Ok(PyBytes::new(py, &public))
}

/// True when the receipt is signed by `public_key` and the signature covers its fields.
#[pyfunction]
pub fn verify_receipt_signature(
    py: Python<'_>,
    receipt: &Bound<'_, AppendReceipt>,
    public_key: BytesArg,
) -> PyResult<bool> {
    let key = parse_public_key(&public_key.0).map_err(|e| refused("public_key", e))?;
    let receipt = receipt.get().core();
    Ok(py.detach(|| receipt.verify_signature(&key)))
}

/// `None` when the store vouches for the receipt, else the reason it does not.
#[pyfunction]
pub fn verify_receipt(
    py: Python<'_>,
    store: &Bound<'_, NativeStore>,
    receipt: &Bound<'_, AppendReceipt>,
) -> PyResult<Option<&'static str>> {
    let receipt = receipt.get().core();
    let problem = store.get().run(py, |s| s.verify_receipt(receipt))?;
    Ok(problem.map(|p| p.as_str()))
}
