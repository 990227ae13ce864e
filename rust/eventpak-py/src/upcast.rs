//! Upcasters: Python callables that bring a payload stored at an older schema version up to
//! the newest registered version of its kind, run when an event's payload is first read.
//!
//! A store holds its upcasters as `Option<Arc<Upcasters>>`, `None` when none are registered,
//! and hands that to every event it reads: an event of a store without upcasters carries a
//! null pointer and its payload getter takes the plain decode path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::args::int_arg;
use crate::errors::UpcastFailed;
use crate::exit::calling_python;
use crate::names::KindName;

/// The steps of one kind: `steps[i]` takes a payload from version `first + i` to `first + i + 1`.
struct Chain {
    first: u32,
    steps: Vec<Py<PyAny>>,
}

impl Chain {
    /// The version a payload has once every step ran.
    fn newest(&self) -> u32 {
        // `eventpak.Upcasters` refuses a step from u32::MAX - 1 upward, so this cannot wrap.
        self.first + self.steps.len() as u32
    }
}

/// FNV-1a: the map is looked up once per upcast payload with a short kind, where the
/// default SipHash (built against collision attacks on untrusted keys) costs more than the
/// rest of the lookup; the keys here are the store's own registered kinds.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The upcasters of one open store, by kind (as the frame stores it: UTF-8 bytes); fixed
/// when the store is opened.
pub struct Upcasters {
    chains: HashMap<Box<[u8]>, Chain, BuildHasherDefault<Fnv>>,
}

impl Upcasters {
    /// Reads the snapshot `eventpak.Upcasters` hands to `NativeStore.open`: a dict
    /// `{kind: (first_version, (fn, ...))}` whose chains are already checked for gaps.
    /// `None` (also for an empty dict) means the store has no upcasters.
    pub fn from_py(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Arc<Self>>> {
        let Some(value) = value.filter(|v| !v.is_none()) else { return Ok(None) };
        let dict = value.downcast::<PyDict>().map_err(|_| malformed())?;
        let mut chains = HashMap::with_capacity_and_hasher(dict.len(), BuildHasherDefault::default());
        for (kind, chain) in dict.iter() {
            let kind = KindName::named(&kind, "kind")?.0;
            let chain = chain.downcast::<PyTuple>().map_err(|_| malformed())?;
            let (first, steps) = chain.extract::<(Bound<'_, PyAny>, Vec<Py<PyAny>>)>()?;
            let first: u32 = int_arg(&first, "from_version")?;
            if steps.is_empty()
                || u32::try_from(steps.len()).ok().and_then(|n| first.checked_add(n)).is_none()
            {
                return Err(malformed());
            }
            chains.insert(kind.into_bytes().into_boxed_slice(), Chain { first, steps });
        }
        Ok((!chains.is_empty()).then(|| Arc::new(Upcasters { chains })))
    }

    /// The version a payload of `kind` stored at `stored` reads as: the newest of its chain
    /// when the chain covers `stored`, else `stored` (nothing runs below the chain's first
    /// step, nor at or above its newest version).
    pub fn version(&self, kind: &[u8], stored: u32) -> u32 {
        match self.chains.get(kind) {
            Some(chain) if (chain.first..chain.newest()).contains(&stored) => chain.newest(),
            _ => stored,
        }
    }

    /// Runs the steps from `stored` upward on `payload`, a freshly decoded value the steps
    /// may change in place. A step that raises an `Exception` becomes
    /// `ep.UpcastFailed(kind, version)` with that exception as its `__cause__`; other
    /// `BaseException`s (Ctrl-C, `SystemExit`) pass through unchanged.
    pub fn apply<'py>(
        &self,
        kind: &[u8],
        stored: u32,
        global_sequence: u64,
        payload: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(chain) = self.chains.get(kind) else { return Ok(payload) };
        let Some(skip) = stored.checked_sub(chain.first) else { return Ok(payload) };
        let py = payload.py();
        let mut value = payload;
        for (version, step) in (stored..).zip(chain.steps.iter().skip(skip as usize)) {
            value = calling_python(py, || call_one(step.bind(py), &value)).map_err(|cause| {
                if !cause.is_instance_of::<PyException>(py) {
                    return cause;
                }
                let kind = String::from_utf8_lossy(kind).into_owned();
                let failed = UpcastFailed::new_err((kind, version, global_sequence));
                failed.set_cause(py, Some(cause));
                failed
            })?;
        }
        Ok(value)
    }
}

/// `f(arg)` without building an argument tuple. The limited API of Python 3.11 (abi3) has
/// no vectorcall, so `call1` allocates a 1-tuple per call; `PyObject_CallFunctionObjArgs`
/// hands the argument to the callee's vectorcall from the C stack instead.
fn call_one<'py>(f: &Bound<'py, PyAny>, arg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let end = std::ptr::null_mut::<pyo3::ffi::PyObject>();
    // SAFETY: `f` and `arg` are live objects held across the call, the null pointer ends the
    // argument list as the C function requires, and the result is a new reference or null
    // with an exception set, which `from_owned_ptr_or_err` takes over or turns into `Err`.
    unsafe {
        let result = pyo3::ffi::PyObject_CallFunctionObjArgs(f.as_ptr(), arg.as_ptr(), end);
        Bound::from_owned_ptr_or_err(f.py(), result)
    }
}

fn malformed() -> PyErr {
    PyTypeError::new_err("upcasters must come from ep.Upcasters (a dict of kind -> (first version, steps))")
}

/// `event.decode(cls)`: builds `cls` from the event's payload in `eventpak.typed`, where the
/// dataclass rules live (imported once per process).
pub fn decode_typed<'py>(event: &Bound<'py, PyAny>, cls: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    static DECODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let decode = DECODE.import(event.py(), "eventpak.typed", "decode_event")?;
    calling_python(event.py(), || decode.call1((event, cls)))
}
