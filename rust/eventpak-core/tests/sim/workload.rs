//! A workload touching every write path (single appends, batches, fences committed and
//! cancelled, rotation, close/reopen with the index checkpoint, cursor checkpoints), the
//! log of what it attempted and what was acknowledged, and the check that a recovered
//! store contains exactly what the promise allows.

use std::path::Path;
use std::sync::{Arc, Mutex};

use eventpak_core::io::Storage;
use eventpak_core::{AppendRequest, Cursor, CursorCheckpoint, Error, Region, Store, StoreConfig, SyncMode};

/// How an attempt's events were appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Plain,
    Fence(usize),
}

/// One append call: its events, in order.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub events: Vec<(String, Vec<u8>)>,
    pub via: Via,
    pub acked: bool,
}

/// What a fence got to.
#[derive(Clone, Copy, Debug, Default)]
pub struct FenceFate {
    pub commit_started: bool,
    pub commit_acked: bool,
}

/// Everything attempted so far, shared with recording storage backends.
#[derive(Clone, Debug, Default)]
pub struct Log {
    pub attempts: Vec<Attempt>,
    pub fences: Vec<FenceFate>,
    /// A cursor checkpoint save was attempted (it may exist even if the save failed late).
    pub checkpoint_attempted: bool,
}

pub type SharedLog = Arc<Mutex<Log>>;

pub fn config() -> StoreConfig {
    StoreConfig { sync: SyncMode::Always, segment_max_bytes: 4096, ..StoreConfig::default() }
}

fn request(entity: &str, payload: &[u8]) -> AppendRequest {
    AppendRequest {
        entity: entity.into(),
        scope: "s".into(),
        kind: "k".into(),
        payload: payload.to_vec(),
        idempotency_key: None,
        expected_sequence: None,
        causation_id: None,
        correlation_id: None,
        ..Default::default()
    }
}

/// Runs `steps` steps of the workload; returns at the first error.
pub fn run(dir: &Path, storage: Arc<dyn Storage>, log: &SharedLog, steps: usize) -> Result<(), Error> {
    run_with(dir, storage, log, steps, config())
}

/// [`run`] with the store opened with `config` (e.g. in shared mode).
pub fn run_with(
    dir: &Path,
    storage: Arc<dyn Storage>,
    log: &SharedLog,
    steps: usize,
    config: StoreConfig,
) -> Result<(), Error> {
    let mut store = Store::open_with(dir, config.clone(), storage.clone())?;
    let mut counter = 0usize;
    let mut next_events = |n: usize| -> Vec<(String, Vec<u8>)> {
        (0..n)
            .map(|_| {
                counter += 1;
                (
                    format!("e{}", counter % 3),
                    format!("payload-{counter:05}-{}", "x".repeat(counter % 40)).into_bytes(),
                )
            })
            .collect()
    };
    for step in 0..steps {
        match step % 8 {
            0 | 1 | 5 => {
                let events = next_events(1);
                let idx = start(log, &events, Via::Plain);
                store.append(request(&events[0].0, &events[0].1))?;
                ack(log, idx);
            }
            2 | 6 => {
                let events = next_events(3);
                let idx = start(log, &events, Via::Plain);
                store.append_batch(events.iter().map(|(e, p)| request(e, p)).collect())?;
                ack(log, idx);
            }
            3 | 7 => {
                let commit = step % 8 == 3;
                let fence = {
                    let mut l = log.lock().unwrap();
                    l.fences.push(FenceFate::default());
                    l.fences.len() - 1
                };
                store.begin_fence()?;
                let events = next_events(2);
                let idx = start(log, &events, Via::Fence(fence));
                store.fence_append_batch(events.iter().map(|(e, p)| request(e, p)).collect())?;
                ack(log, idx);
                if commit {
                    log.lock().unwrap().fences[fence].commit_started = true;
                    store.commit_fence()?;
                    log.lock().unwrap().fences[fence].commit_acked = true;
                } else {
                    store.cancel_fence()?;
                }
            }
            _ => {
                // A cursor delivers what is visible, then commits through the store, as a
                // durable worker does: sync through the position, then the atomic save.
                let mut cursor = Cursor::new(Region::all());
                cursor.poll_batch(&store, usize::MAX)?;
                log.lock().unwrap().checkpoint_attempted = true;
                cursor.commit(&store, "w")?;
                store.close()?;
                store = Store::open_with(dir, config.clone(), storage.clone())?;
            }
        }
    }
    store.close()
}

fn start(log: &SharedLog, events: &[(String, Vec<u8>)], via: Via) -> usize {
    let mut l = log.lock().unwrap();
    l.attempts.push(Attempt { events: events.to_vec(), via, acked: false });
    l.attempts.len() - 1
}

fn ack(log: &SharedLog, idx: usize) {
    log.lock().unwrap().attempts[idx].acked = true;
}

/// Checks a recovered store against what was attempted and acknowledged: every
/// acknowledged-durable event is present, nothing is invented, no batch is split, fenced
/// events appear only if their commit was attempted (and must if it was acknowledged),
/// chains verify, `verify` finds nothing, and the cursor checkpoint is never corrupt.
pub fn check(dir: &Path, store: &Store, log: &Log) -> Result<(), String> {
    let events = store.query(&Region::all(), None, None).map_err(|e| e.to_string())?;
    let mut flat: Vec<(usize, &(String, Vec<u8>))> = Vec::new();
    for (i, attempt) in log.attempts.iter().enumerate() {
        flat.extend(attempt.events.iter().map(|e| (i, e)));
    }
    let mut visible_per_attempt = vec![0usize; log.attempts.len()];
    for event in &events {
        let view = event.view();
        let seq = view.global_sequence as usize;
        let Some(&(attempt, (entity, payload))) = flat.get(seq) else {
            return Err(format!("invented event at sequence {seq}"));
        };
        if view.names().0 != entity || view.payload() != payload.as_slice() {
            return Err(format!("sequence {seq} holds other content than was appended"));
        }
        if let Via::Fence(f) = log.attempts[attempt].via {
            if !log.fences[f].commit_started {
                return Err(format!("sequence {seq} of an uncommitted fence is visible"));
            }
        }
        visible_per_attempt[attempt] += 1;
    }
    for (i, attempt) in log.attempts.iter().enumerate() {
        let seen = visible_per_attempt[i];
        if seen != 0 && seen != attempt.events.len() {
            return Err(format!("attempt {i} is partly visible ({seen} of {})", attempt.events.len()));
        }
        let must = attempt.acked
            && match attempt.via {
                Via::Plain => true,
                Via::Fence(f) => log.fences[f].commit_acked,
            };
        if must && seen == 0 {
            return Err(format!("acknowledged attempt {i} is missing"));
        }
    }
    let mut heads = std::collections::HashMap::new();
    for event in &events {
        let view = event.view();
        let (clock, prev) = heads.get(view.names().0).copied().unwrap_or((0u64, [0u8; 32]));
        if view.entity_sequence() != clock || view.prev_hash() != prev {
            return Err(format!("chain broken at sequence {}", view.global_sequence));
        }
        heads.insert(view.names().0.to_owned(), (clock + 1, view.hash()));
    }
    // The full integrity check finds nothing either: every frame, hash, seal record, side
    // file and the index agree after recovery.
    let report = store.verify(&mut |_, _| true).map_err(|e| e.to_string())?;
    if !report.ok() {
        return Err(format!("verify after recovery: {:?}", report.problems));
    }
    match CursorCheckpoint::load(dir, "w") {
        Err(e) => Err(format!("cursor checkpoint unreadable after recovery: {e}")),
        Ok(Some(_)) if !log.checkpoint_attempted => Err("a cursor checkpoint appeared from nowhere".into()),
        // A commit syncs through its position first: the event it names survived.
        Ok(Some(c)) if c.started && !events.iter().any(|e| e.view().global_sequence == c.position) => {
            Err(format!("the cursor checkpoint points at sequence {}, which did not survive", c.position))
        }
        Ok(_) => Ok(()),
    }
}
