//! A workload touching every write path (single appends, tagged batches with tracking
//! records, tracking records alone, appends with conditions that hold and that fail, fences
//! committed and cancelled, rotation, close/reopen with the index checkpoint, cursor
//! checkpoints, compaction of sealed segments), the log of what it attempted and what was acknowledged, and the check that
//! a recovered store contains exactly what the promise allows.

use std::path::Path;
use std::sync::{Arc, Mutex};

use eventpak_core::io::Storage;
use eventpak_core::{
    AppendCondition, AppendRequest, CommitGuards, Cursor, CursorCheckpoint, Error, Region, Selection, Store,
    StoreConfig, StoredEvent, SyncMode, Tracking,
};

/// The tracking name the workload records positions under.
pub const TRACKING: &str = "sim";
/// The tags the workload puts on events (by counter).
const TAGS: [&str; 3] = ["t0", "t1", "t2"];

/// One attempted event: entity, payload, tags.
pub type SimEvent = (String, Vec<u8>, Vec<String>);

/// How an attempt's events were appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Plain,
    Fence(usize),
}

/// One append call: its events, in order, and the tracking position it records (if any).
#[derive(Clone, Debug)]
pub struct Attempt {
    pub events: Vec<SimEvent>,
    pub via: Via,
    pub acked: bool,
    pub tracking: Option<u64>,
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
    /// Compactions attempted: the sequences each selected, and whether it returned.
    pub compactions: Vec<(Vec<u64>, bool)>,
}

impl Log {
    /// Every sequence some compaction selected (gone, or still there if it never committed).
    fn selected(&self) -> std::collections::HashSet<u64> {
        self.compactions.iter().flat_map(|(seqs, _)| seqs.iter().copied()).collect()
    }
}

pub type SharedLog = Arc<Mutex<Log>>;

pub fn config() -> StoreConfig {
    StoreConfig { sync: SyncMode::Always, segment_max_bytes: 4096, ..StoreConfig::default() }
}

/// [`config`] of an encrypted store (a fixed key: crash states are reopened with it).
pub fn encrypted_config() -> StoreConfig {
    StoreConfig { encryption_key: Some(eventpak_core::EncryptionKey(vec![7; 32])), ..config() }
}

fn request((entity, payload, tags): &SimEvent) -> AppendRequest {
    AppendRequest {
        entity: entity.clone(),
        scope: "s".into(),
        kind: "k".into(),
        payload: payload.clone(),
        tags: tags.clone(),
        ..Default::default()
    }
}

fn requests(events: &[SimEvent]) -> Vec<AppendRequest> {
    events.iter().map(request).collect()
}

/// A condition over the events tagged `tag` after `after`.
fn condition(tag: &str, after: Option<u64>) -> CommitGuards {
    let region = Region::all().with_tags(&[tag]).expect("a valid tag");
    CommitGuards { condition: Some(AppendCondition { fail_if_events_match: region, after }), tracking: None }
}

/// Tracking position `position`.
fn tracking(position: u64) -> CommitGuards {
    CommitGuards { condition: None, tracking: Some(Tracking::new(TRACKING, position).expect("a valid name")) }
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
    let mut position = 0u64;
    let mut next_events = |n: usize| -> Vec<SimEvent> {
        (0..n)
            .map(|_| {
                counter += 1;
                let tags = match counter % 4 {
                    0 => vec![],
                    n => TAGS[..n].iter().map(|t| t.to_string()).collect(),
                };
                let payload = format!("payload-{counter:05}-{}", "x".repeat(counter % 40)).into_bytes();
                (format!("e{}", counter % 3), payload, tags)
            })
            .collect()
    };
    for step in 0..steps {
        match step % 10 {
            0 | 5 => {
                let events = next_events(1);
                let idx = start(log, &events, Via::Plain, None);
                store.append(request(&events[0]))?;
                ack(log, idx);
            }
            1 => {
                // A condition that holds (nothing tagged t2 after the head just read), then
                // one that fails (a t1 event exists) and must write nothing.
                let head = store.head()?;
                let events = next_events(1);
                let idx = start(log, &events, Via::Plain, None);
                store.append_guarded(request(&events[0]), condition("t2", head))?;
                ack(log, idx);
                let refused = next_events(2);
                match store.append_batch_guarded(requests(&refused), condition("t1", None)) {
                    Err(Error::AppendConditionFailed { .. }) => {}
                    Ok(_) => panic!("a condition over existing t1 events held"),
                    Err(other) => return Err(other),
                }
            }
            2 | 6 | 8 => {
                // A batch with a tracking record, or (step 8) a tracking record alone.
                let events = next_events(if step % 10 == 8 { 0 } else { 3 });
                position += 1 + (step % 3) as u64;
                let idx = start(log, &events, Via::Plain, Some(position));
                store.append_batch_guarded(requests(&events), tracking(position))?;
                ack(log, idx);
            }
            3 | 7 => {
                let commit = step % 10 == 3;
                let fence = {
                    let mut l = log.lock().unwrap();
                    l.fences.push(FenceFate::default());
                    l.fences.len() - 1
                };
                store.begin_fence()?;
                let events = next_events(2);
                let idx = start(log, &events, Via::Fence(fence), None);
                store.fence_append_batch(requests(&events))?;
                ack(log, idx);
                if commit {
                    log.lock().unwrap().fences[fence].commit_started = true;
                    store.commit_fence()?;
                    log.lock().unwrap().fences[fence].commit_acked = true;
                } else {
                    store.cancel_fence()?;
                }
            }
            9 => {
                // A tracking record whose position is not past the recorded one: refused.
                match store.append_batch_guarded(requests(&next_events(1)), tracking(position)) {
                    Err(Error::TrackingConflict { .. }) if position > 0 => {}
                    Ok(_) if position == 0 => {
                        panic!("the workload records its first position at step 2")
                    }
                    Ok(_) => panic!("a stale tracking position was accepted"),
                    Err(other) => return Err(other),
                }
            }
            _ => {
                if step % 20 == 14 && !config.shared {
                    compact(&store, log)?;
                }
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

/// Removes every third event of the sealed segments (by its counter), noting what was
/// selected before the compaction can commit.
fn compact(store: &Store, log: &SharedLog) -> Result<(), Error> {
    let index = {
        let mut l = log.lock().unwrap();
        l.compactions.push((Vec::new(), false));
        l.compactions.len() - 1
    };
    let mut pick = |event: &StoredEvent| {
        // Opened first: an encrypted store's frames hold the payload sealed.
        let payload = store.payload_of(event).ok()?;
        let counter: u64 = std::str::from_utf8(&payload[8..13]).ok()?.parse().ok()?;
        let chosen = counter.is_multiple_of(3);
        if chosen {
            log.lock().unwrap().compactions[index].0.push(event.view().global_sequence);
        }
        Some(chosen)
    };
    store.compact(Selection::Predicate(&mut pick), &mut |_, _| true)?;
    log.lock().unwrap().compactions[index].1 = true;
    Ok(())
}

fn start(log: &SharedLog, events: &[SimEvent], via: Via, tracking: Option<u64>) -> usize {
    let mut l = log.lock().unwrap();
    l.attempts.push(Attempt { events: events.to_vec(), via, acked: false, tracking });
    l.attempts.len() - 1
}

fn ack(log: &SharedLog, idx: usize) {
    log.lock().unwrap().attempts[idx].acked = true;
}

/// Checks a recovered store against what was attempted and acknowledged: every
/// acknowledged-durable event is present, nothing is invented, no batch is split, fenced
/// events appear only if their commit was attempted (and must if it was acknowledged),
/// events keep their tags and the tag index agrees, the tracking position is the one of
/// the last tracking record of the recovered prefix of attempts, chains verify, `verify`
/// finds nothing, and the cursor checkpoint is never corrupt.
pub fn check(dir: &Path, store: &Store, log: &Log) -> Result<(), String> {
    let events = store.query(&Region::all(), None, None).map_err(|e| e.to_string())?;
    let mut flat: Vec<(usize, &SimEvent)> = Vec::new();
    for (i, attempt) in log.attempts.iter().enumerate() {
        flat.extend(attempt.events.iter().map(|e| (i, e)));
    }
    let mut visible_per_attempt = vec![0usize; log.attempts.len()];
    // A compaction removed all it selected or nothing (a crash before its commit), and a
    // returned one removed all of it; a removed event counts as seen for its attempt.
    let present: std::collections::HashSet<u64> = events.iter().map(|e| e.global_sequence()).collect();
    let selected = log.selected();
    let mut removed = 0usize;
    for (i, (seqs, acked)) in log.compactions.iter().enumerate() {
        let gone = seqs.iter().filter(|s| !present.contains(s)).count();
        if gone != 0 && gone != seqs.len() || (*acked && gone != seqs.len()) {
            return Err(format!("compaction {i} removed {gone} of its {} events", seqs.len()));
        }
        removed += gone;
        for &seq in seqs.iter().filter(|s| !present.contains(s)) {
            visible_per_attempt[flat[seq as usize].0] += 1;
        }
    }
    for event in &events {
        let view = event.view();
        let seq = view.global_sequence as usize;
        let Some(&(attempt, (entity, payload, tags))) = flat.get(seq) else {
            return Err(format!("invented event at sequence {seq}"));
        };
        // (Opened first when the store is encrypted: its frames hold sealed payloads.)
        let stored = store.payload_of(event).map_err(|e| format!("sequence {seq}: {e}"))?;
        if view.names().0 != entity || stored != payload.as_slice() || !view.tags().eq(tags.iter()) {
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
        // An attempt of no event (a tracking record alone) is checked by its position.
        if must && seen == 0 && !attempt.events.is_empty() {
            return Err(format!("acknowledged attempt {i} is missing"));
        }
    }
    check_tags(store, &events)?;
    check_tracking(store, log, removed)?;
    let mut heads = std::collections::HashMap::new();
    for event in &events {
        let view = event.view();
        let (clock, prev) = heads.get(view.names().0).copied().unwrap_or((0u64, [0u8; 32]));
        // After removed events the clock jumps, and the link names an event that is gone.
        let over_removed = removed > 0 && view.entity_sequence() > clock;
        if !over_removed && (view.entity_sequence() != clock || view.prev_hash() != prev) {
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
        Ok(Some(c)) if c.started && !present.contains(&c.position) && !selected.contains(&c.position) => {
            Err(format!("the cursor checkpoint points at sequence {}, which did not survive", c.position))
        }
        Ok(_) => Ok(()),
    }
}

/// The tag index answers what the recovered events' own tags say.
fn check_tags(store: &Store, events: &[eventpak_core::StoredEvent]) -> Result<(), String> {
    for tag in TAGS {
        let region = Region::all().with_tags(&[tag]).expect("a valid tag");
        let found: Vec<u64> = store
            .query(&region, None, None)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|e| e.global_sequence())
            .collect();
        let tagged: Vec<u64> = events
            .iter()
            .filter(|e| e.view().tags().any(|t| t == tag))
            .map(|e| e.global_sequence())
            .collect();
        if found != tagged {
            return Err(format!("the tag index holds {found:?} for {tag}, the events {tagged:?}"));
        }
    }
    Ok(())
}

/// The recovered tracking position is the one of the last attempt with a tracking record
/// among a prefix of the attempts that ends where the log ends (attempts of no event may be
/// in or out) and holds every acknowledged attempt (all durable: `sync="always"`).
fn check_tracking(store: &Store, log: &Log, removed: usize) -> Result<(), String> {
    let written = store.stats().map_err(|e| e.to_string())?.events as usize + removed;
    let mut cum = vec![0usize];
    for attempt in &log.attempts {
        cum.push(cum.last().unwrap() + attempt.events.len());
    }
    let acked = log.attempts.iter().rposition(|a| a.acked).map_or(0, |i| i + 1);
    let allowed: Vec<Option<u64>> = (0..cum.len())
        .filter(|&k| cum[k] == written && k >= acked)
        .map(|k| log.attempts[..k].iter().rev().find_map(|a| a.tracking))
        .collect();
    let found = store.tracking_position(TRACKING).map_err(|e| e.to_string())?;
    if !allowed.contains(&found) {
        return Err(format!("tracking position {found:?}, the recovered attempts allow {allowed:?}"));
    }
    Ok(())
}
