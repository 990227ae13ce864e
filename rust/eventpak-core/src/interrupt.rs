//! Long waits a caller can cut short.
//!
//! A wait of the engine that may last seconds (a cursor's wait for events, or a wait for
//! another thread's or another process's fence, up to `fence_wait_ms`) sleeps in slices when its thread has a check installed
//! ([`interruptible`]), and asks the check between two slices whether to give up. When it
//! says so, the wait fails with [`Error::Interrupted`] having written nothing. The Python
//! binding installs, on the interpreter's main thread, a check that runs pending signal
//! handlers: Ctrl-C then ends such a wait within a slice instead of after it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a wait sleeps between two checks.
const SLICE: Duration = Duration::from_millis(100);

thread_local! {
    static CHECK: Cell<Option<fn() -> bool>> = const { Cell::new(None) };
}

/// Runs `work` with `check` asked, between slices of every long wait on this thread,
/// whether to give up (`true`: the wait fails with [`Error::Interrupted`]). The check may
/// run any code, store calls included (a nested call installs its own check and puts this
/// one back when it ends).
pub fn interruptible<T>(check: fn() -> bool, work: impl FnOnce() -> T) -> T {
    struct PutBack(Option<fn() -> bool>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            CHECK.with(|c| c.set(self.0));
        }
    }
    let _put_back = PutBack(CHECK.with(|c| c.replace(Some(check))));
    work()
}

/// Where the current slice of a wait that ends at `deadline` ends: `deadline` itself when
/// no check is installed, so such a wait sleeps in one piece.
pub(crate) fn slice_end(deadline: Instant) -> Instant {
    match CHECK.with(Cell::get) {
        Some(_) => deadline.min(Instant::now() + SLICE),
        None => deadline,
    }
}

/// [`Error::Interrupted`] when the installed check asks the wait to give up.
pub(crate) fn check() -> Result<()> {
    match CHECK.with(Cell::get) {
        Some(asks_to_stop) if asks_to_stop() => Err(Error::Interrupted),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop() -> bool {
        true
    }

    fn go_on() -> bool {
        false
    }

    #[test]
    fn a_check_applies_inside_its_call_only_and_nested_calls_put_the_outer_one_back() {
        let far = Instant::now() + Duration::from_secs(60);
        assert!(check().is_ok());
        assert_eq!(slice_end(far), far, "no check: one piece");
        interruptible(stop, || {
            assert!(matches!(check(), Err(Error::Interrupted)));
            assert!(slice_end(far) < far);
            interruptible(go_on, || assert!(check().is_ok()));
            assert!(matches!(check(), Err(Error::Interrupted)), "the outer check is back");
        });
        assert!(check().is_ok());
        let _ = std::panic::catch_unwind(|| interruptible(stop, || panic!("unwinds")));
        assert!(check().is_ok(), "put back on unwind too");
    }
}
