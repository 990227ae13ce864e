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

/// Kills its process right after it renames a file into place as `file_name`.
#[derive(Debug)]
struct DieAfterRenaming(&'static str);

impl Storage for DieAfterRenaming {
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        OsStorage.rename(from, to)?;
        if to.file_name().is_some_and(|name| name == self.0) {
            // SAFETY: signals this very process; nothing after it runs.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        Ok(())
    }
}

/// Runs this test in a child process with `CHILD_DIR` set; returns how it ended.
fn run_child(test: &str, dir: &Path) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(CHILD_DIR, dir)
        .status()
        .unwrap()
}

fn payloads(store: &Store) -> Vec<Vec<u8>> {
    let events = store.query(&Region::all(), None, None).unwrap();
    events.iter().map(|e| e.view().payload().to_vec()).collect()
}

#[test]
fn a_process_killed_right_after_saving_its_fence_marker_hides_nothing_acknowledged() {
    const NAME: &str = "a_process_killed_right_after_saving_its_fence_marker_hides_nothing_acknowledged";
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        // The child: dies inside begin_fence, between saving `hidden.ranges` and telling
        // the other processes it changed.
        let store = Store::open_with(
            Path::new(&dir),
            shared(),
            std::sync::Arc::new(DieAfterRenaming("hidden.ranges")),
        )
        .unwrap();
        let _ = store.begin_fence();
        unreachable!("the child must die inside begin_fence");
    }
    let dir = tempfile::tempdir().unwrap();
    let survivor = Store::open(dir.path(), shared()).unwrap();
    survivor.append(request("e", "k", b"before")).unwrap();
    let status = run_child(NAME, dir.path());
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the child ended otherwise: {status:?}");
    // Acknowledged appends after the death, by the survivor and by a process that opens now.
    for p in [&b"one"[..], b"two", b"three"] {
        assert!(survivor.append(request("e", "k", p)).unwrap().durable);
    }
    let newcomer = Store::open(dir.path(), shared()).unwrap();
    newcomer.append(request("e", "k", b"newcomer")).unwrap();
    survivor.append(request("e", "k", b"last")).unwrap();
    let expected: Vec<&[u8]> = vec![b"before", b"one", b"two", b"three", b"newcomer", b"last"];
    assert_eq!(payloads(&survivor), expected);
    assert_eq!(payloads(&newcomer), expected);
    drop((survivor, newcomer));
    let reopened = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(payloads(&reopened), expected);
    assert!(reopened.verify(&mut |_, _| true).unwrap().problems.is_empty());
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
    // The write lock is waited for in flock; the sync lock's holder is waited for on a futex.
    for (lock, waits_in) in [("write.lock", libc::SYS_flock), ("sync.lock", libc::SYS_futex)] {
        // Another process holds the lock (an open file description of its own).
        let holder = std::fs::File::open(dir.path().join("shared").join(lock)).unwrap();
        holder.lock().unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let appender = {
            let store = store.clone();
            std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tid_tx.send(unsafe { libc::gettid() }).unwrap();
                store.append(request("e", "k", lock.as_bytes()))
            })
        };
        let tid = tid_rx.recv().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !blocked_in(tid, waits_in) {
            assert!(std::time::Instant::now() < deadline, "the append never waited for {lock}");
            std::thread::yield_now();
        }
        for _ in 0..3 {
            // SAFETY: signals a live thread of this process (it waits for the lock).
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
        }
        holder.unlock().unwrap();
        let receipt = appender.join().unwrap().unwrap_or_else(|e| panic!("waiting for {lock}: {e}"));
        assert!(receipt.durable);
    }
    assert!(store.stats().unwrap().writer_failure.is_none());
}
