//! Sharing processes killed at chosen instants: the test binary runs itself as the child
//! process, which dies by SIGKILL from inside a file operation, and the parent checks that
//! the processes left behind lose nothing acknowledged and are never blocked.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use common::request;
use eventpak_core::io::{OsStorage, Storage};
use eventpak_core::{Region, Store, StoreConfig, SyncMode};

/// Names the data dir in the child role.
const CHILD_DIR: &str = "EVENTPAK_SHARED_DEATH_DIR";

fn shared() -> StoreConfig {
    StoreConfig { sync: SyncMode::Always, shared: true, fence_wait_ms: 10_000, ..StoreConfig::default() }
}

/// Kills its process right after the `nth` time it renames `hidden.ranges` into place (1:
/// opening a fence, 2: committing or cancelling it).
#[derive(Debug)]
struct DieAfterSavingVisibility {
    nth: u32,
    seen: std::sync::atomic::AtomicU32,
}

impl Storage for DieAfterSavingVisibility {
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        OsStorage.rename(from, to)?;
        let visibility = to.file_name().is_some_and(|name| name == "hidden.ranges");
        if visibility && self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == self.nth {
            // SAFETY: signals this very process; nothing after it runs.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        Ok(())
    }
}

/// How the child's fence ends: its process dies right after saving that step.
const FENCE_ENDINGS: [&str; 3] = ["begin", "commit", "cancel"];

/// The child role: opens a fence, appends through it and commits or cancels it, dying right
/// after `hidden.ranges` is saved for `ending`, before the other processes are told.
fn die_in_fence(dir: &Path, ending: &str) -> ! {
    let nth = if ending == "begin" { 1 } else { 2 };
    let storage = DieAfterSavingVisibility { nth, seen: Default::default() };
    let store = Store::open_with(dir, shared(), std::sync::Arc::new(storage)).unwrap();
    let _ = store.begin_fence();
    store.fence_append_batch(vec![request("e", "k", b"fenced")]).unwrap();
    let _ = if ending == "commit" { store.commit_fence() } else { store.cancel_fence() };
    unreachable!("the child must die saving hidden.ranges ({ending})");
}

/// Runs this test in a child process with `CHILD_DIR` set; returns how it ended.
fn run_child(test: &str, dir: &Path, ending: &str) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ENDING, ending)
        .status()
        .unwrap()
}

/// Names the fence ending in the child role.
const CHILD_ENDING: &str = "EVENTPAK_SHARED_DEATH_ENDING";

fn payloads(store: &Store) -> Vec<Vec<u8>> {
    let events = store.query(&Region::all(), None, None).unwrap();
    events.iter().map(|e| e.view().payload().to_vec()).collect()
}

#[test]
fn a_process_killed_right_after_saving_a_fence_step_hides_nothing_acknowledged() {
    const NAME: &str = "a_process_killed_right_after_saving_a_fence_step_hides_nothing_acknowledged";
    if let (Some(dir), Some(ending)) = (std::env::var_os(CHILD_DIR), std::env::var(CHILD_ENDING).ok()) {
        die_in_fence(Path::new(&dir), &ending);
    }
    // After the death, the survivor (whose view predates it) or a process that joins after
    // it appends first.
    for (ending, survivor_first) in FENCE_ENDINGS.into_iter().flat_map(|e| [(e, true), (e, false)]) {
        let dir = tempfile::tempdir().unwrap();
        let survivor = Store::open(dir.path(), shared()).unwrap();
        survivor.append(request("e", "k", b"before")).unwrap();
        let status = run_child(NAME, dir.path(), ending);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{ending}: the child ended otherwise: {status:?}");
        let mut acknowledged: Vec<&[u8]> = Vec::new();
        if survivor_first {
            assert!(survivor.append(request("e", "k", b"one")).unwrap().durable, "{ending}");
            acknowledged.push(b"one");
        }
        let newcomer = Store::open(dir.path(), shared()).unwrap();
        assert!(newcomer.append(request("e", "k", b"newcomer")).unwrap().durable, "{ending}");
        acknowledged.push(b"newcomer");
        assert!(survivor.append(request("e", "k", b"last")).unwrap().durable, "{ending}");
        acknowledged.push(b"last");
        // A fence whose commit reached the disk shows its event; one opened or cancelled does not.
        let mut expected: Vec<&[u8]> = vec![b"before"];
        if ending == "commit" {
            expected.push(b"fenced");
        }
        expected.extend(acknowledged);
        assert_eq!(payloads(&survivor), expected, "{ending}: the survivor's view");
        assert_eq!(payloads(&newcomer), expected, "{ending}: the newcomer's view");
        drop((survivor, newcomer));
        let reopened = Store::open(dir.path(), StoreConfig::default()).unwrap();
        assert_eq!(payloads(&reopened), expected, "{ending}: after reopen");
        assert!(reopened.verify(&mut |_, _| true).unwrap().problems.is_empty(), "{ending}");
    }
}

/// True while thread `tid` of this process is blocked in system call `number`.
fn blocked_in(tid: libc::pid_t, number: libc::c_long) -> bool {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
    text.split_whitespace().next() == Some(&number.to_string())
}

#[test]
fn a_signal_while_waiting_for_a_shared_lock_does_not_fail_the_append() {
    if std::env::var_os(CHILD_DIR).is_some() {
        return; // Only the other test has a child role.
    }
    extern "C" fn handled(_: libc::c_int) {}
    // SAFETY: installs a handler that does nothing, without SA_RESTART (as Python installs
    // its handlers), so a blocked flock returns EINTR when the signal arrives.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handled as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path(), shared()).unwrap());
    // Another process holds the lock (an open file description of its own): a group-commit
    // leader (its holder is waited for on a futex word), then an opener (waited for in flock).
    for (lock, waits_in) in [("sync.lock", libc::SYS_futex), ("open.lock", libc::SYS_flock)] {
        let holder = std::fs::File::open(dir.path().join("shared").join(lock)).unwrap();
        holder.lock().unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let waiter = {
            let store = store.clone();
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tid_tx.send(unsafe { libc::gettid() }).unwrap();
                match lock {
                    "sync.lock" => {
                        store.append(request("e", "k", lock.as_bytes())).map(|r| assert!(r.durable))
                    }
                    _ => Store::open(&dir, shared()).map(drop),
                }
            })
        };
        let tid = tid_rx.recv().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !blocked_in(tid, waits_in) {
            assert!(std::time::Instant::now() < deadline, "the call never waited for {lock}");
            std::thread::yield_now();
        }
        for _ in 0..3 {
            // SAFETY: signals a live thread of this process (it waits for the lock).
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
        }
        holder.unlock().unwrap();
        waiter.join().unwrap().unwrap_or_else(|e| panic!("waiting for {lock}: {e}"));
    }
    assert!(store.stats().unwrap().writer_failure.is_none());
}
