//! What keeps the objects the walk reads alive. It reads containers, their items and long
//! data through borrowed pointers: the payload keeps them alive as long as no Python code
//! runs, and reading a str, an int, a float, bytes or a container's items never runs any.
//! Python code can run only in the fallback (`isinstance`, `utcoffset`, `default`), or when
//! the walk drops a reference of its own (a destructor). Before either, [`Walk::hold`] takes a
//! reference to every container still open and every long data noted so far, since that code
//! could drop their last other reference. So a payload without such values is walked with no
//! reference counting at all, and one with them stays safe whatever its Python code does.

use std::mem::MaybeUninit;

use pyo3::ffi;

use super::containers::{too_deep, MAX_DEPTH};
use super::encode::Fail;
use super::walk::Walk;

/// Most containers open at once: each nests one level deeper.
pub const MAX_OPEN: usize = MAX_DEPTH as usize;

/// Room for the open containers, left uninitialized: [`Walk::open`] writes an entry before
/// anything reads it. (Kept apart from the walk's other fields, which start at zero: next to
/// them, the compiler would zero all 2 KiB on every encoding.)
pub type OpenStack = MaybeUninit<[*mut ffi::PyObject; MAX_OPEN]>;

impl Walk<'_, '_> {
    /// Notes `obj` as open while its items are written; returns its slot for [`Walk::close`].
    #[inline(always)]
    pub(super) fn open(&mut self, obj: *mut ffi::PyObject) -> Result<usize, Fail> {
        let slot = self.open_len;
        // The depth limit keeps nesting below `MAX_OPEN`; checked again, as memory safety
        // depends on it.
        if slot == MAX_OPEN {
            return Err(too_deep());
        }
        // SAFETY: `slot < MAX_OPEN`, within the array.
        unsafe { self.open.as_mut_ptr().cast::<*mut ffi::PyObject>().add(slot).write(obj) };
        self.open_len = slot + 1;
        Ok(slot)
    }

    /// Closes the container in `slot`, which was opened with `len` items; false when it no
    /// longer has them. Only Python code could have changed it: when some ran while it was
    /// open, the walk holds it, and then checks its length (`size` reads it) and releases it.
    ///
    /// # Safety
    /// `obj` is the container in `slot`, and `size` reads its length.
    #[inline(always)]
    pub(super) unsafe fn close(
        &mut self,
        slot: usize,
        obj: *mut ffi::PyObject,
        len: usize,
        size: unsafe extern "C" fn(*mut ffi::PyObject) -> ffi::Py_ssize_t,
    ) -> bool {
        self.open_len = slot;
        if slot >= self.held {
            return true;
        }
        self.held = slot;
        // SAFETY: `obj` is alive, held by the walk (`slot < held`).
        let same = unsafe { size(obj) } as usize == len;
        // Dropping the reference may free the container, and with it long data of its items.
        self.hold_long();
        // SAFETY: the walk took this reference in `hold`, and the thread is attached.
        unsafe { ffi::Py_DecRef(obj) };
        same
    }

    /// Takes a reference to every open container and every long data not held yet: called
    /// before Python code runs, and before the walk drops a reference of its own.
    #[inline(never)]
    pub(super) fn hold(&mut self) {
        for slot in self.held..self.open_len {
            // SAFETY: entries below `open_len` were written by `open`. The ones from `held`
            // on were opened after Python code last ran and after the walk last dropped a
            // reference (both come after a `hold`), so their parents still keep them alive.
            // The thread is attached.
            unsafe { ffi::Py_IncRef(self.entry(slot)) };
        }
        self.held = self.open_len;
        self.hold_long();
    }

    /// The long data part of [`Walk::hold`].
    fn hold_long(&mut self) {
        let py = self.py;
        if let Some(long) = self.long.as_deref_mut() {
            // Held ones come first: each `hold` holds all noted before it.
            for part in long.iter_mut().rev().take_while(|part| !part.held()) {
                // SAFETY: not held yet, so noted since the last `hold`: no Python code ran and
                // no reference was dropped since, so the payload still keeps its owner alive.
                unsafe { part.hold(py) };
            }
        }
    }

    /// The container in `slot`.
    ///
    /// # Safety
    /// `slot < open_len`: `open` wrote it.
    unsafe fn entry(&self, slot: usize) -> *mut ffi::PyObject {
        // SAFETY: entries below `open_len` (<= MAX_OPEN) were written by `open`.
        unsafe { self.open.as_ptr().cast::<*mut ffi::PyObject>().add(slot).read() }
    }

    /// Releases the containers still held after the walk stopped on an error.
    pub(super) fn release_open(&mut self) {
        for slot in 0..self.held {
            // SAFETY: the walk took these references in `hold`; the thread is attached.
            unsafe { ffi::Py_DecRef(self.entry(slot)) };
        }
        self.held = 0;
        self.open_len = 0;
    }
}
