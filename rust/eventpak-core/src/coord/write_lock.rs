//! The write lock of shared mode: taken for every append, so it must cost no system call
//! when nobody else holds it.
//!
//! On Linux it is a robust, process-shared pthread mutex in the shared page: locking and
//! unlocking an uncontended one are atomic operations in user space, and when its holder
//! dies the kernel marks it so that the next locker gets `EOWNERDEAD` instead of waiting
//! forever (the published end and the writing mark then tell whether a repair is needed).
//! Elsewhere it is an `flock` on `shared/write.lock`.

use super::SharedMemory;
#[cfg(not(target_os = "linux"))]
use super::{FileLock, LockGuard};
use crate::error::{Error, Result};

/// Holds the write lock until dropped.
pub struct WriteGuard<'a> {
    #[cfg(target_os = "linux")]
    mutex: *mut libc::pthread_mutex_t,
    #[cfg(target_os = "linux")]
    _page: std::marker::PhantomData<&'a SharedMemory>,
    #[cfg(not(target_os = "linux"))]
    _guard: LockGuard<'a>,
}

#[cfg(target_os = "linux")]
impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this thread locked the mutex (a guard never leaves its thread: it is not
        // Send), and the page outlives the guard.
        unsafe { libc::pthread_mutex_unlock(self.mutex) };
    }
}

/// Makes the mutex in `page` a fresh robust, process-shared one. Only the first process of a
/// session calls it, under the open lock, while no other process uses the page.
#[cfg(target_os = "linux")]
pub fn initialize(page: &SharedMemory) -> Result<()> {
    let failed = |what: &str, code: i32| Error::storage(what, std::io::Error::from_raw_os_error(code));
    // SAFETY: the attribute object is initialised before use and destroyed after; the
    // mutex lies in the mapped page, aligned and large enough (checked in `mem.rs`).
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        let mut code = libc::pthread_mutexattr_init(&mut attr);
        if code == 0 {
            code = libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        }
        if code == 0 {
            code = libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
        }
        if code == 0 {
            code = libc::pthread_mutex_init(page.write_mutex(), &attr);
        }
        libc::pthread_mutexattr_destroy(&mut attr);
        if code != 0 {
            return Err(failed("setting up the shared write lock", code));
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn initialize(_page: &SharedMemory) -> Result<()> {
    Ok(())
}

/// Blocks until this thread holds the write lock. A holder that died leaves it to us.
#[cfg(target_os = "linux")]
pub fn lock(page: &SharedMemory) -> Result<WriteGuard<'_>> {
    let mutex = page.write_mutex();
    // SAFETY: the mutex was initialised by the session's first process before any lock.
    let code = unsafe { libc::pthread_mutex_lock(mutex) };
    match code {
        0 => {}
        libc::EOWNERDEAD => {
            // SAFETY: we hold it now; what it protects is judged by the writing mark.
            unsafe { libc::pthread_mutex_consistent(mutex) };
        }
        code => {
            let err = std::io::Error::from_raw_os_error(code);
            return Err(Error::storage("taking the shared write lock", err));
        }
    }
    Ok(WriteGuard { mutex, _page: std::marker::PhantomData })
}

#[cfg(not(target_os = "linux"))]
pub fn lock<'a>(_page: &'a SharedMemory, file: &'a FileLock) -> Result<WriteGuard<'a>> {
    Ok(WriteGuard { _guard: file.lock()? })
}
