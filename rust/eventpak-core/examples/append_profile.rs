//! Engine-only timing of appends and a full read, without Python in the way.
//!
//! `cargo run --release -p eventpak-core --example append_profile` appends `N` events
//! (default 200,000) in batches of `BATCH` (default 1,000) with `sync="never"`, then reads
//! them all back. The workload is the one the Python benchmarks use: 1,024 entities
//! `acct-NNNNN`, scope `s`, kind `placed`, 150-byte payloads. Requests are built before
//! the clock starts, so the time is the engine's alone.
//!
//! `ENTITIES=` sets the number of entities (1 makes every batch one entity's events).
//! `MODE=single` appends one event per call instead (`SYNC=batch` by default there, the
//! store's default); `SYNC=never|batch|always` overrides the sync mode.
//!
//! Besides wall time it reports the CPU time of the appending thread (its `write(2)` calls
//! included, other processes' turns on a shared machine left out).
//!
//! For repeatable numbers on a busy machine, count instructions of the append calls only:
//! `valgrind --tool=callgrind --toggle-collect='*Store*append*' target/release/examples/append_profile`
//! (with a small `N`, e.g. `N=20000`), and divide the total by `N`.

use eventpak_core::*;
use std::time::{Duration, Instant};

/// CPU time this thread has used so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall and thread CPU time spent in `f`, added to `spent`.
fn timed<T>(spent: &mut (Duration, Duration), f: impl FnOnce() -> T) -> T {
    let (wall, cpu) = (Instant::now(), thread_cpu_time());
    let out = f();
    spent.0 += wall.elapsed();
    spent.1 += thread_cpu_time() - cpu;
    out
}

fn request(i: usize, entities: usize, payload: &[u8]) -> AppendRequest {
    AppendRequest {
        entity: format!("acct-{:05}", i % entities),
        scope: "s".into(),
        kind: "placed".into(),
        payload: payload.to_vec(),
        ..Default::default()
    }
}

fn main() {
    let var = |name: &str| std::env::var(name).ok();
    let n: usize = var("N").and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let batch: usize = var("BATCH").and_then(|v| v.parse().ok()).unwrap_or(1000);
    let entities: usize = var("ENTITIES").and_then(|v| v.parse().ok()).unwrap_or(1024);
    let single = var("MODE").as_deref() == Some("single");
    let sync = match var("SYNC").as_deref() {
        Some("always") => SyncMode::Always,
        Some("batch") => SyncMode::Batch,
        Some("never") => SyncMode::Never,
        None if single => SyncMode::Batch,
        None => SyncMode::Never,
        Some(other) => panic!("SYNC={other}: expected never, batch or always"),
    };
    let dir = std::env::temp_dir().join(format!("ep-prof-{}", std::process::id()));
    let store = Store::open(&dir, StoreConfig { sync, ..Default::default() }).unwrap();
    let payload = vec![0x84u8; 150];
    let mut spent = (Duration::ZERO, Duration::ZERO);
    if single {
        let requests: Vec<AppendRequest> = (0..n).map(|i| request(i, entities, &payload)).collect();
        timed(&mut spent, || {
            for r in requests {
                store.append(r).unwrap();
            }
        });
    } else {
        for chunk in 0..n / batch {
            let requests: Vec<AppendRequest> =
                (0..batch).map(|i| request(chunk * batch + i, entities, &payload)).collect();
            let receipts = timed(&mut spent, || store.append_batch(requests).unwrap());
            drop(receipts);
        }
    }
    let what = if single { "single append".to_string() } else { format!("batch of {batch}") };
    let per_event = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "{what} ({sync:?}): {:.0} ns/event wall, {:.0} ns/event thread CPU",
        per_event(spent.0),
        per_event(spent.1)
    );
    let t = Instant::now();
    let all = store.query(&Region::all(), None, None).unwrap();
    println!("query: {:.0} ns/event ({})", t.elapsed().as_nanos() as f64 / all.len() as f64, all.len());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
