//! Engine-only timing of batch appends and a full read, without Python in the way.
//! `cargo run --release -p eventpak-core --example append_profile` (`N=` sets the event count);
//! run it under `valgrind --tool=callgrind` to see where an append spends its instructions.

use eventpak_core::*;
use std::time::Instant;
fn main() {
    let dir = std::env::temp_dir().join(format!("ep-prof-{}", std::process::id()));
    let store = Store::open(&dir, StoreConfig { sync: SyncMode::Never, ..Default::default() }).unwrap();
    let payload = vec![0x84u8; 150];
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let t = Instant::now();
    for chunk in 0..n / 1000 {
        let batch: Vec<AppendRequest> = (0..1000)
            .map(|i| AppendRequest {
                entity: format!("acct:{}", (chunk * 1000 + i) % 1024),
                scope: "eu".into(),
                kind: "deposit".into(),
                payload: payload.clone(),
                idempotency_key: None,
                expected_sequence: None,
                causation_id: None,
                correlation_id: None,
                ..Default::default()
            })
            .collect();
        store.append_batch(batch).unwrap();
    }
    println!("batch append: {:.0} ns/event", t.elapsed().as_nanos() as f64 / n as f64);
    let t = Instant::now();
    let all = store.query(&Region::all(), None, None).unwrap();
    println!("query: {:.0} ns/event ({})", t.elapsed().as_nanos() as f64 / all.len() as f64, all.len());
    std::fs::remove_dir_all(&dir).unwrap();
}
