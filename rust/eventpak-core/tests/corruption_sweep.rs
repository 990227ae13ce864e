//! Corruption sweep (`docs/design.md`, "Durability and recovery"): truncation at every byte of the last segment's final
//! frames, sealed segments cut at every frame boundary, thousands of random single-byte flips
//! across segments, the seal records, the index checkpoint, `hidden.ranges` and cursor
//! checkpoints, plus forged length fields.
//!
//! Whatever the damage, a full scan at open (no index checkpoint) must either recover a
//! legal prefix (only the unfinished last batch of the last segment may go) or fail with the
//! typed error. Under a loaded index checkpoint open checks every covered frame's CRC,
//! sequence and id, so damage that breaks a CRC fails the open as the scan does. Only a
//! forgery with a recomputed CRC may open: then reading the damaged event raises
//! `CorruptSegment` naming its segment or serves the forged bytes, every other event reads
//! back intact, and `Store::verify` must report it at that frame. Never a panic, a hang, a
//! huge allocation from a forged length, an event silently missing in the middle, a wrong
//! event served for a sequence, or damage that is accepted and not reported by `verify`.
//!
//! `EVENTPAK_EXTENDED=1` multiplies the number of flips; `EVENTPAK_SWEEP_SEED=<u64>` replays
//! one run (the seed is printed); `EVENTPAK_SWEEP_FLIPS=<n>` sets the flip count directly.

mod common;
mod rng;

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{copy_dir, parse_frames, request, FrameInfo};
use eventpak_core::segment::layout::{
    BODY_ENTITY_LEN_OFFSET, BODY_FIXED_LEN, BODY_KEY_LEN_OFFSET, BODY_KIND_LEN_OFFSET,
    BODY_PAYLOAD_LEN_OFFSET, BODY_SCOPE_LEN_OFFSET, FRAME_BATCH_INDEX_OFFSET, FRAME_BATCH_LEN_OFFSET,
    FRAME_BODY_LEN_OFFSET, FRAME_CRC_COVERS_FROM, FRAME_CRC_OFFSET, FRAME_GLOBAL_SEQUENCE_OFFSET,
    FRAME_HEADER_LEN, SEGMENT_BASE_SEQUENCE_OFFSET, SEGMENT_HEADER_LEN, SEGMENT_ID_OFFSET,
    SEGMENT_PADDING_OFFSET, SEGMENT_VERSION_OFFSET,
};
use eventpak_core::segment::{SEALS_FILE, SEAL_RECORD_LEN};
use eventpak_core::{AppendRequest, CursorCheckpoint, Error, Region, Store, StoreConfig, SyncMode};

// ---------------------------------------------------------------------------------------
// Guards: the largest single allocation, and a watchdog against hangs.
// ---------------------------------------------------------------------------------------

mod alloc_guard;

use alloc_guard::{ALLOCATION_LIMIT, LARGEST_ALLOCATION};

#[global_allocator]
static ALLOCATOR: alloc_guard::Tracking = alloc_guard::Tracking;

fn assert_no_huge_allocation(case: &str) {
    let largest = LARGEST_ALLOCATION.load(Ordering::Relaxed);
    assert!(largest <= ALLOCATION_LIMIT, "{case}: an allocation of {largest} bytes was requested");
}

/// Aborts the process (naming the case) when a test makes no progress for a long time:
/// a hang must fail loudly instead of blocking the suite.
struct Watchdog {
    state: Arc<(Mutex<String>, AtomicU64, AtomicBool)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn new(test: &'static str) -> Self {
        let state = Arc::new((Mutex::new(String::from("start")), AtomicU64::new(0), AtomicBool::new(false)));
        let watched = state.clone();
        let thread = std::thread::spawn(move || {
            let limit = Duration::from_secs(120);
            let (mut seen, mut since) = (u64::MAX, Instant::now());
            while !watched.2.load(Ordering::Acquire) {
                std::thread::park_timeout(Duration::from_millis(200));
                let beats = watched.1.load(Ordering::Acquire);
                if beats != seen {
                    (seen, since) = (beats, Instant::now());
                } else if since.elapsed() > limit {
                    let case = watched.0.lock().map(|c| c.clone()).unwrap_or_default();
                    eprintln!("{test}: no progress for {limit:?}, stuck on: {case}");
                    std::process::abort();
                }
            }
        });
        Watchdog { state, thread: Some(thread) }
    }

    fn beat(&self, case: &str) {
        if let Ok(mut current) = self.state.0.lock() {
            current.clear();
            current.push_str(case);
        }
        self.state.1.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.state.2.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers: scratch space, seeds, configs.
// ---------------------------------------------------------------------------------------

fn extended() -> bool {
    std::env::var("EVENTPAK_EXTENDED").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Scratch dirs live on tmpfs when there is one: thousands of opens and copies, no disk.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("eventpak-sweep-").tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::Builder::new().prefix("eventpak-sweep-").tempdir().expect("tempdir")
}

fn seed() -> u64 {
    match std::env::var("EVENTPAK_SWEEP_SEED") {
        Ok(s) => s.trim().parse().expect("EVENTPAK_SWEEP_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed),
    }
}

const SEGMENT_MAX: u64 = 4096;

fn write_config() -> StoreConfig {
    StoreConfig { sync: SyncMode::Never, segment_max_bytes: SEGMENT_MAX, ..StoreConfig::default() }
}

/// Read-only opens change nothing on disk, so a flipped byte can be restored in place.
fn read_only() -> StoreConfig {
    StoreConfig { read_only: true, ..write_config() }
}

fn set_bytes(path: &Path, at: usize, bytes: &[u8]) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, at as u64).unwrap();
}

fn keyed(entity: &str, kind: &str, payload: &[u8], key: &str) -> AppendRequest {
    AppendRequest { idempotency_key: Some(key.as_bytes().to_vec()), ..request(entity, kind, payload) }
}

fn payload(i: usize) -> Vec<u8> {
    format!("payload-{i:04}-{}", "x".repeat(24 + i % 7)).into_bytes()
}

// ---------------------------------------------------------------------------------------
// The pristine store.
// ---------------------------------------------------------------------------------------

struct Segment {
    rel: PathBuf,
    bytes: Vec<u8>,
    frames: Vec<FrameInfo>,
}

struct Pristine {
    _root: tempfile::TempDir,
    dir: PathBuf,
    /// Frame bytes of every event (visible or hidden), by global sequence.
    frames: Vec<Vec<u8>>,
    /// Visible sequences, ascending.
    visible: Vec<u64>,
    segments: Vec<Segment>,
    /// Offset (in the last segment) and first sequence of the last batch.
    last_batch_at: usize,
    last_batch_seq: u64,
    index_ckpt: Vec<u8>,
    hidden: Vec<u8>,
    /// `segments/seals`: one record per segment before the newest.
    seals: Vec<u8>,
    /// `(checkpoint id, bytes, decoded)`.
    cursors: Vec<(String, Vec<u8>, CursorCheckpoint)>,
    /// Where each event is, by global sequence: its segment and frame.
    places: Vec<(usize, FrameInfo)>,
}

impl Pristine {
    fn total(&self) -> u64 {
        self.frames.len() as u64
    }
    fn last(&self) -> &Segment {
        self.segments.last().unwrap()
    }
    fn seg_path(&self, dir: &Path, i: usize) -> PathBuf {
        dir.join(&self.segments[i].rel)
    }
    /// The frame holding byte `at` of segment `i`; `None` inside the header.
    fn frame_at(&self, i: usize, at: usize) -> Option<FrameInfo> {
        self.segments[i].frames.iter().copied().find(|f| (f.offset..f.offset + f.len).contains(&at))
    }
}

/// A small store with singles, keyed events, batches, causal links (a cause in the store and
/// an explicit correlation), a payload version, tags, a committed and a cancelled fence, rotation
/// over at least three segments, an index checkpoint covering all but the final
/// four frames (a single event then a batch of three, appended by a later session that
/// "crashed" before writing its checkpoint) and two cursor checkpoints.
fn build_pristine() -> Pristine {
    let root = scratch();
    let dir = root.path().join("data");
    let segment_count = |dir: &Path| common::segment_paths(dir).len();
    let mut i = 0usize;
    let mut next = || {
        i += 1;
        (format!("e{}", i % 3), payload(i))
    };
    {
        let store = Store::open(&dir, write_config()).unwrap();
        for n in 0..10 {
            let (entity, p) = next();
            let r = if n % 3 == 0 {
                keyed(&entity, "opened", &p, &format!("k{n}"))
            } else {
                request(&entity, "k", &p)
            };
            let r = AppendRequest { causation_id: (n % 4 == 1).then_some([n as u8; 16]), ..r };
            store.append(r).unwrap();
        }
        let cause = store.append(request("e4", "cause", b"the-cause")).unwrap();
        let effect = AppendRequest {
            causation_id: Some(cause.event_id),
            payload_version: 3,
            tags: vec!["effect".into(), "of:e4".into()],
            ..request("e5", "effect", b"the-effect")
        };
        store.append(effect).unwrap();
        let correlated =
            AppendRequest { correlation_id: Some(cause.event_id), ..request("e6", "correlated", b"joined") };
        store.append(correlated).unwrap();
        let batch = (0..3)
            .map(|n| AppendRequest {
                tags: vec![format!("b{n}"), "batch".into()],
                ..keyed("acct:b", "batched", &payload(100 + n), &format!("b{n}"))
            })
            .collect();
        store.append_batch(batch).unwrap();
        store.begin_fence().unwrap();
        store
            .fence_append_batch(vec![request("e1", "fenced", b"kept-1"), request("e9", "fenced", b"kept-2")])
            .unwrap();
        store.commit_fence().unwrap();
        for _ in 0..8 {
            let (entity, p) = next();
            store.append(request(&entity, "k", &p)).unwrap();
        }
        store.begin_fence().unwrap();
        store.fence_append_batch(vec![request("e0", "gone", b"c-1"), request("e5", "gone", b"c-2")]).unwrap();
        store.fence_append_batch(vec![request("e1", "gone", b"c-3")]).unwrap();
        store.cancel_fence().unwrap();
        let batch = (0..4).map(|n| request(&format!("e{n}"), "batched", &payload(200 + n))).collect();
        store.append_batch(batch).unwrap();
        while segment_count(&dir) < 3
            || parse_frames(&std::fs::read(common::segment_paths(&dir).last().unwrap()).unwrap()).len() < 3
        {
            let (entity, p) = next();
            store.append(request(&entity, "k", &p)).unwrap();
        }
        store.close().unwrap();
    }
    let session_one_ckpt = std::fs::read(dir.join("index.ckpt")).unwrap();
    let segments_before = segment_count(&dir);
    {
        let store = Store::open(&dir, write_config()).unwrap();
        store.append(request("e2", "tail", b"single-before-the-last-batch")).unwrap();
        store
            .append_batch(vec![
                request("e0", "tail", b"last-batch-0"),
                request("e7", "tail", b"last-batch-1"),
                request("e0", "tail", b"last-batch-2"),
            ])
            .unwrap();
        store.close().unwrap();
    }
    assert_eq!(segment_count(&dir), segments_before, "the final frames must not rotate");
    // The second session "crashed" before its checkpoint: the checkpoint covers a prefix.
    std::fs::write(dir.join("index.ckpt"), &session_one_ckpt).unwrap();

    let identity = Region::all().with_entity("e1").unwrap().checkpoint_identity();
    let cursors = vec![
        (
            "sweep".to_owned(),
            CursorCheckpoint {
                position: 17,
                started: true,
                process_boot_ns: Some(123_456_789),
                region_identity: Some(identity),
            },
        ),
        ("plain".to_owned(), CursorCheckpoint::default()),
    ];
    let cursors = cursors
        .into_iter()
        .map(|(id, ckpt)| {
            ckpt.save(&dir, &id).unwrap();
            let bytes = std::fs::read(dir.join("cursors").join(format!("{id}.ckpt"))).unwrap();
            (id, bytes, ckpt)
        })
        .collect();

    let segments: Vec<Segment> = common::segment_paths(&dir)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            Segment { rel: path.strip_prefix(&dir).unwrap().to_owned(), frames: parse_frames(&bytes), bytes }
        })
        .collect();
    let store = Store::open(&dir, read_only()).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.recovery.index_checkpoint, stats.recovery.scanned_events), ("loaded", 4));
    let all: Vec<u64> = (0..stats.events).collect();
    let frames: Vec<Vec<u8>> =
        store.read_events(&all).unwrap().iter().map(|e| e.frame_bytes().to_vec()).collect();
    let visible =
        store.query(&Region::all(), None, None).unwrap().iter().map(|e| e.global_sequence()).collect();
    drop(store);

    let last = segments.last().unwrap();
    let tail: Vec<(u32, u32)> =
        last.frames.iter().rev().take(4).map(|f| (f.batch_index, f.batch_len)).collect();
    assert_eq!(tail, [(2, 3), (1, 3), (0, 3), (0, 1)], "the log must end with a single then a batch of 3");
    assert!(last.frames.len() >= 6, "the last segment holds frames from both sessions");
    let last_batch = last.frames[last.frames.len() - 3];
    assert_eq!(frames.len() as u64, last.frames.last().unwrap().seq + 1);
    let places: Vec<(usize, FrameInfo)> =
        segments.iter().enumerate().flat_map(|(i, s)| s.frames.iter().map(move |f| (i, *f))).collect();
    assert!(places.iter().enumerate().all(|(seq, (_, f))| f.seq == seq as u64));
    let seals = std::fs::read(dir.join("segments").join(SEALS_FILE)).unwrap();
    assert_eq!(seals.len(), SEAL_RECORD_LEN * (segments.len() - 1), "one seal per segment before the newest");
    Pristine {
        index_ckpt: std::fs::read(dir.join("index.ckpt")).unwrap(),
        hidden: std::fs::read(dir.join("hidden.ranges")).unwrap(),
        seals,
        places,
        _root: root,
        dir,
        frames,
        visible,
        last_batch_at: last_batch.offset,
        last_batch_seq: last_batch.seq,
        segments,
        cursors,
    }
}

/// Each test builds its own (a few milliseconds on tmpfs), so its files go when it ends.
fn pristine() -> Pristine {
    build_pristine()
}

// ---------------------------------------------------------------------------------------
// Checks.
// ---------------------------------------------------------------------------------------

/// The store holds exactly the first `n` events of the pristine log, byte for byte, with
/// the pristine visibility, and every entity chain walks back to its first event.
fn check_prefix(store: &Store, p: &Pristine, n: u64, case: &str) {
    check_log(store, &p.frames, &p.visible, n, case);
}

/// The store holds exactly the first `n` of `frames` (by global sequence), the visible ones
/// among them are `visible`, and every entity chain walks back to its first event.
fn check_log(store: &Store, frames: &[Vec<u8>], visible: &[u64], n: u64, case: &str) {
    let stats = store.stats().unwrap();
    assert_eq!(stats.events, n, "{case}: wrong number of events");
    let all: Vec<u64> = (0..n).collect();
    let got = store.read_events(&all).unwrap();
    assert_eq!(got.len() as u64, n, "{case}");
    for (seq, event) in got.iter().enumerate() {
        assert_eq!(
            event.frame_bytes(),
            &frames[seq][..],
            "{case}: event {seq} differs from the pristine log"
        );
    }
    let found: Vec<u64> =
        store.query(&Region::all(), None, None).unwrap().iter().map(|e| e.global_sequence()).collect();
    let expected: Vec<u64> = visible.iter().copied().filter(|&s| s < n).collect();
    assert_eq!(found, expected, "{case}: visible events differ");
    // Each entity's newest visible event walks back over its whole chain.
    let mut newest: BTreeMap<String, (u64, [u8; 16])> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for event in store.query(&Region::all(), None, None).unwrap() {
        let view = event.view();
        let entity = view.names().0.to_owned();
        *counts.entry(entity.clone()).or_default() += 1;
        newest.insert(entity, (view.entity_sequence(), view.event_id()));
    }
    for (entity, (clock, id)) in newest {
        let chain = store.walk_ancestors(&id, None).unwrap();
        assert_eq!(chain.len() as u64, clock + 1, "{case}: chain of {entity}");
        assert_eq!(counts[&entity], clock + 1, "{case}: clock of {entity}");
    }
}

/// Events of an opened store that did not read back as the pristine log.
#[derive(Debug, Default, PartialEq, Eq)]
struct Damage {
    /// Reading these raised `CorruptSegment` naming their own segment and frame.
    unreadable: Vec<u64>,
    /// These were served with other bytes than their pristine frame: `(sequence, bytes)`.
    altered: Vec<(u64, Vec<u8>)>,
}

impl Damage {
    fn is_empty(&self) -> bool {
        self.unreadable.is_empty() && self.altered.is_empty()
    }
    fn sequences(&self) -> impl Iterator<Item = u64> + '_ {
        self.unreadable.iter().copied().chain(self.altered.iter().map(|(seq, _)| *seq))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Opened with this many events and this torn tail; `damage` says which of them did not
    /// read back as the pristine log.
    Opened { events: u64, torn: u64, damage: Damage },
    /// Failed closed with `CorruptSegment` on this file.
    Corrupt { path: PathBuf },
}

/// Opens (through `result`) the store in `dir` and reads every event back, one at a time.
/// A log that reads back whole is checked in full ([`check_prefix`]).
fn outcome(
    result: eventpak_core::Result<Store>,
    p: &Pristine,
    dir: &Path,
    case: &str,
) -> (Outcome, Option<Store>) {
    match result {
        Ok(store) => {
            let stats = store.stats().unwrap();
            let damage = read_back(&store, p, dir, stats.events, case);
            if damage.is_empty() {
                check_prefix(&store, p, stats.events, case);
            }
            let out = Outcome::Opened { events: stats.events, torn: stats.recovery.torn_tail_bytes, damage };
            (out, Some(store))
        }
        Err(Error::CorruptSegment { path, offset, reason }) => {
            assert!(!reason.is_empty(), "{case}: empty reason");
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(offset <= len, "{case}: offset {offset} past the end of {} ({len})", path.display());
            (Outcome::Corrupt { path }, None)
        }
        Err(other) => panic!("{case}: open failed with an untyped or wrong error: {other:?}"),
    }
}

/// Reads events `0..n` one by one. Each is the pristine frame, or other bytes (recorded), or
/// `CorruptSegment` naming its own segment and an offset inside its frame (recorded): a read
/// never serves another event's frame, and never fails another way. When a visible event
/// is unreadable, a query over everything fails closed too.
fn read_back(store: &Store, p: &Pristine, dir: &Path, n: u64, case: &str) -> Damage {
    let mut damage = Damage::default();
    for seq in 0..n {
        let (segment, frame) = p.places[seq as usize];
        match store.read_events(&[seq]) {
            Ok(events) => {
                let bytes = events[0].frame_bytes();
                assert_eq!(events[0].global_sequence(), seq, "{case}: event {seq} read as another sequence");
                if bytes != p.frames[seq as usize] {
                    damage.altered.push((seq, bytes.to_vec()));
                }
            }
            Err(Error::CorruptSegment { path, offset, reason }) => {
                assert_eq!(path, p.seg_path(dir, segment), "{case}: reading event {seq} named another file");
                let span = frame.offset as u64..=(frame.offset + frame.len) as u64;
                assert!(
                    span.contains(&offset),
                    "{case}: event {seq} refused at {offset}, its frame is {span:?}"
                );
                assert!(!reason.is_empty(), "{case}: empty reason");
                damage.unreadable.push(seq);
            }
            Err(other) => panic!("{case}: reading event {seq} failed with a wrong error: {other:?}"),
        }
    }
    if damage.unreadable.iter().any(|s| p.visible.binary_search(s).is_ok()) {
        let all = store.query(&Region::all(), None, None);
        assert!(matches!(all, Err(Error::CorruptSegment { .. })), "{case}: a query served damage");
    }
    damage
}

/// `Store::verify` reports a problem in `path` at an offset in `at`.
fn assert_verify_reports(store: &Store, path: &Path, at: std::ops::RangeInclusive<u64>, case: &str) {
    let report = store.verify(&mut |_, _| true).unwrap_or_else(|e| panic!("{case}: verify failed: {e}"));
    assert!(
        report.problems.iter().any(|problem| problem.path == path && at.contains(&problem.offset)),
        "{case}: verify did not report the damage in {} at {at:?}: {:?}",
        path.display(),
        report.problems
    );
}

/// A damaged segment byte under a full scan: an intact log, only the last batch lost (flip
/// in the last segment's last batch), or `CorruptSegment` naming the damaged file. A scan
/// reads every frame, so whatever opens reads back as the pristine log.
fn check_segment_damage(out: &Outcome, p: &Pristine, damaged: &Path, in_last_batch: bool, case: &str) {
    match out {
        Outcome::Opened { damage, .. } if !damage.is_empty() => {
            panic!("{case}: a scan opened a log that does not read back: {damage:?}")
        }
        Outcome::Opened { events, torn, .. } if *events == p.total() => {
            assert_eq!(*torn, 0, "{case}: a torn tail reported while nothing was lost");
        }
        Outcome::Opened { events, torn, .. } => {
            assert!(in_last_batch, "{case}: {events} of {} events recovered: silent loss", p.total());
            assert_eq!(*events, p.last_batch_seq, "{case}: a torn tail must cut exactly the last batch");
            let expected_torn = (p.last().bytes.len() - p.last_batch_at) as u64;
            assert_eq!(*torn, expected_torn, "{case}: torn_tail_bytes");
        }
        Outcome::Corrupt { path } => {
            assert_eq!(path, damaged, "{case}: CorruptSegment names another file");
        }
    }
}

/// What may become of damage to the bytes `at` of segment file `damaged` (inside the frame of
/// `frame_seq`, if any) under a loaded index checkpoint, given the full scan's verdict `scan`:
///
/// - refused at open, with `CorruptSegment` naming the file;
/// - the scan's own verdict, when every event reads back (the damage is in the uncovered
///   tail, which is scanned); if the whole log opened, `verify` still reports the damage
///   (only the header padding, outside every CRC, gets that far);
/// - only for a forgery with a recomputed CRC (`resealed`), which open's CRC pass cannot
///   see: opened whole, and only the damaged event reads differently (refused on read, or
///   served with the forged bytes), and `verify` reports a problem in the file at `at`.
///   Damage that breaks a CRC never opens: open checks every covered frame's CRC.
///
/// Returns a label for the tally.
#[allow(clippy::too_many_arguments)]
fn check_damage_under_checkpoint(
    out: &Outcome,
    store: Option<&Store>,
    p: &Pristine,
    damaged: &Path,
    scan: &Outcome,
    frame_seq: Option<u64>,
    at: std::ops::RangeInclusive<u64>,
    resealed: bool,
    case: &str,
) -> &'static str {
    match out {
        Outcome::Corrupt { path } => {
            assert_eq!(path, damaged, "{case}: CorruptSegment names another file");
            "checkpoint: CorruptSegment"
        }
        Outcome::Opened { events, torn, damage } if damage.is_empty() => {
            if (*events, *torn) != (p.total(), 0) {
                assert_eq!(out, scan, "{case}: a torn tail cut differently from the full scan");
                return "checkpoint: torn last batch cut";
            }
            assert_verify_reports(store.unwrap(), damaged, at, case);
            "checkpoint: opened whole, verify reports it"
        }
        Outcome::Opened { events, torn, damage } => {
            assert_eq!((*events, *torn), (p.total(), 0), "{case}: damage read back from a shortened log");
            let seq =
                frame_seq.unwrap_or_else(|| panic!("{case}: {damage:?} from damage outside every frame"));
            assert!(damage.sequences().all(|s| s == seq), "{case}: {damage:?}, only event {seq} is damaged");
            assert!(resealed, "{case}: damage with a bad CRC opened under the checkpoint: {damage:?}");
            assert_verify_reports(store.unwrap(), damaged, at, case);
            if damage.altered.is_empty() {
                "checkpoint: opened, the damaged event refused on read, verify reports it"
            } else {
                "checkpoint: opened, the forged event served, verify reports it"
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// (a) Truncation of the last segment at every byte of its final frames.
// ---------------------------------------------------------------------------------------

/// `(events kept, valid length)` after cutting the last segment at `cut`: only complete
/// batches survive.
fn expected_after_cut(p: &Pristine, cut: usize) -> (u64, usize) {
    let last = p.last();
    let mut valid = (last.frames[0].seq, 40usize);
    for f in &last.frames {
        if f.offset + f.len > cut {
            break;
        }
        if f.batch_index + 1 == f.batch_len {
            valid = (f.seq + 1, f.offset + f.len);
        }
    }
    valid
}

#[test]
fn truncating_the_last_segment_at_every_offset_keeps_exactly_the_complete_batches() {
    let dog = Watchdog::new("truncation");
    let p = &pristine();
    let last = p.last();
    let first_cut = last.frames[last.frames.len() - 4].offset;
    let scratch = scratch();
    let work = scratch.path().join("ro");
    copy_dir(&p.dir, &work);
    let seg = p.seg_path(&work, p.segments.len() - 1);
    let mut cuts = 0;
    let started = Instant::now();
    // Every offset from the start of the final four frames (a single and a batch of three)
    // to one byte short of the end; every cut is tried with and without the checkpoint.
    for cut in first_cut..last.bytes.len() {
        for use_checkpoint in [true, false] {
            let case = format!("cut last segment at {cut} (checkpoint {use_checkpoint})");
            dog.beat(&case);
            std::fs::write(&seg, &last.bytes[..cut]).unwrap();
            let (events, valid) = expected_after_cut(p, cut);
            let config = StoreConfig { enable_index_checkpoint: use_checkpoint, ..read_only() };
            let store = Store::open(&work, config).unwrap_or_else(|e| panic!("{case}: {e}"));
            check_prefix(&store, p, events, &case);
            let stats = store.stats().unwrap();
            assert_eq!(stats.recovery.torn_tail_bytes, (cut - valid) as u64, "{case}");
            if cut > valid {
                assert_eq!(stats.recovery.torn_tail_segment.as_deref(), Some(seg.as_path()), "{case}");
            }
            let expected_ckpt = if use_checkpoint { "loaded" } else { "disabled" };
            assert_eq!(stats.recovery.index_checkpoint, expected_ckpt, "{case}");
            drop(store);
            assert_eq!(std::fs::metadata(&seg).unwrap().len(), cut as u64, "{case}: read-only open wrote");
            cuts += 1;
        }
    }
    // The same cuts through a writable open: the tail is really cut, the store takes new
    // appends at the right sequence, and a reopen finds a clean log.
    for cut in first_cut..last.bytes.len() {
        let case = format!("cut last segment at {cut}, writable open");
        dog.beat(&case);
        let rw = scratch.path().join(format!("rw-{cut}"));
        copy_dir(&p.dir, &rw);
        let seg = p.seg_path(&rw, p.segments.len() - 1);
        std::fs::write(&seg, &last.bytes[..cut]).unwrap();
        let (events, valid) = expected_after_cut(p, cut);
        let store = Store::open(&rw, write_config()).unwrap_or_else(|e| panic!("{case}: {e}"));
        check_prefix(&store, p, events, &case);
        assert_eq!(store.stats().unwrap().recovery.torn_tail_bytes, (cut - valid) as u64, "{case}");
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), valid as u64, "{case}: tail not cut");
        let receipt = store.append(request("e2", "after", b"after-the-cut")).unwrap();
        assert_eq!(receipt.global_sequence, events, "{case}");
        store.close().unwrap();
        let store = Store::open(&rw, write_config()).unwrap();
        let stats = store.stats().unwrap();
        assert_eq!((stats.events, stats.recovery.torn_tail_bytes), (events + 1, 0), "{case}");
        assert_eq!(stats.recovery.index_checkpoint, "loaded", "{case}");
        drop(store);
        std::fs::remove_dir_all(&rw).unwrap();
        cuts += 1;
    }
    // A cut inside the last segment's header is a crash while rotating: the file goes.
    for cut in 0..SEGMENT_HEADER_LEN {
        let case = format!("cut last segment header at {cut}");
        dog.beat(&case);
        std::fs::write(&seg, &last.bytes[..cut]).unwrap();
        let store = Store::open(&work, read_only()).unwrap_or_else(|e| panic!("{case}: {e}"));
        check_prefix(&store, p, last.frames[0].seq, &case);
        assert_eq!(store.stats().unwrap().recovery.removed_segments, vec![seg.clone()], "{case}");
        cuts += 1;
    }
    assert_no_huge_allocation("truncation");
    println!(
        "truncation sweep: {cuts} cuts ({} offsets of the final frames) in {:?}",
        last.bytes.len() - first_cut,
        started.elapsed()
    );
}

#[test]
fn truncating_any_earlier_segment_fails_closed() {
    let dog = Watchdog::new("earlier truncation");
    let p = &pristine();
    let scratch = scratch();
    let work = scratch.path().join("data");
    copy_dir(&p.dir, &work);
    let mut cuts = 0;
    for (i, segment) in p.segments[..p.segments.len() - 1].iter().enumerate() {
        let path = p.seg_path(&work, i);
        let last = segment.frames.last().unwrap();
        let mut offsets: Vec<usize> = (0..=SEGMENT_HEADER_LEN).collect();
        offsets.extend(segment.frames.iter().map(|f| f.offset + 1));
        offsets.extend(segment.frames.iter().skip(1).map(|f| f.offset));
        offsets.extend(last.offset..segment.bytes.len());
        for cut in offsets {
            for use_checkpoint in [true, false] {
                let case = format!("cut segment {i} at {cut} (checkpoint {use_checkpoint})");
                dog.beat(&case);
                std::fs::write(&path, &segment.bytes[..cut]).unwrap();
                let config = StoreConfig { enable_index_checkpoint: use_checkpoint, ..read_only() };
                match Store::open(&work, config) {
                    // A cut at a frame boundary shows where the next segment should start.
                    Err(Error::CorruptSegment { path: bad, .. }) => {
                        assert!(bad >= path && bad.parent() == path.parent(), "{case}: {}", bad.display())
                    }
                    Err(e) => panic!("{case}: wrong error {e:?}"),
                    Ok(store) => panic!("{case}: opened with {} events", store.stats().unwrap().events),
                }
                cuts += 1;
            }
        }
        std::fs::write(&path, &segment.bytes).unwrap();
    }
    // A whole middle segment missing is a hole, not a shorter log.
    std::fs::remove_file(p.seg_path(&work, 1)).unwrap();
    assert!(matches!(Store::open(&work, read_only()), Err(Error::CorruptSegment { .. })));
    assert_no_huge_allocation("earlier truncation");
    println!("earlier-segment truncation: {cuts} cuts, all CorruptSegment");
}

/// A sealed segment cut back at a frame boundary holds only intact frames. What shows that
/// events are gone is the next segment's base sequence or, when the newest segment is empty,
/// half created or gone, only the seal record. Every such cut fails closed, with and without
/// the checkpoint, read-only or writable, naming the cut segment and changing nothing.
#[test]
fn a_sealed_segment_cut_at_any_frame_boundary_fails_closed_whatever_became_of_the_newest() {
    let dog = Watchdog::new("sealed cuts");
    let p = &pristine();
    let scratch = scratch();
    let work = scratch.path().join("data");
    copy_dir(&p.dir, &work);
    let newest = p.seg_path(&work, p.segments.len() - 1);
    let mut cuts = 0;
    let newest_states: [(&str, Option<&[u8]>); 4] = [
        ("intact", Some(&p.last().bytes)),
        ("emptied", Some(&[])),
        ("header cut short", Some(&p.last().bytes[..SEGMENT_HEADER_LEN / 2])),
        ("deleted", None),
    ];
    for (state, newest_bytes) in newest_states {
        match newest_bytes {
            Some(bytes) => std::fs::write(&newest, bytes).unwrap(),
            None => std::fs::remove_file(&newest).unwrap(),
        }
        for (i, segment) in p.segments[..p.segments.len() - 1].iter().enumerate() {
            let path = p.seg_path(&work, i);
            for (kept, frame) in segment.frames.iter().enumerate() {
                std::fs::write(&path, &segment.bytes[..frame.offset]).unwrap();
                let before = common::snapshot(&work);
                for use_checkpoint in [true, false] {
                    for read_only in [true, false] {
                        let case = format!(
                            "segment {i} cut to {kept} frames, newest segment {state} \
                             (checkpoint {use_checkpoint}, read-only {read_only})"
                        );
                        dog.beat(&case);
                        let config = StoreConfig {
                            enable_index_checkpoint: use_checkpoint,
                            read_only,
                            ..write_config()
                        };
                        match Store::open(&work, config) {
                            Err(Error::CorruptSegment { path: bad, offset, reason }) => {
                                assert_eq!(bad, path, "{case}: names another file ({reason})");
                                assert_eq!(offset, frame.offset as u64, "{case}: {reason}");
                                assert!(reason.contains("sealed at"), "{case}: {reason}");
                            }
                            Err(e) => panic!("{case}: wrong error {e:?}"),
                            Ok(store) => {
                                panic!("{case}: opened with {} events", store.stats().unwrap().events)
                            }
                        }
                        assert_eq!(common::snapshot(&work), before, "{case}: a failed open changed files");
                        cuts += 1;
                    }
                }
            }
            std::fs::write(&path, &segment.bytes).unwrap();
        }
    }
    std::fs::write(&newest, &p.last().bytes).unwrap();
    let store = Store::open(&work, read_only()).unwrap();
    check_prefix(&store, p, p.total(), "restored");
    println!("sealed segments cut at frame boundaries: {cuts} opens, all CorruptSegment");
}

/// Seal records cut short. A record cut short (or left as zeros) at the end is a crash while
/// sealing: it is ignored only when it would seal the newest segment, which then takes more
/// frames and is sealed again at its next rotation, and a writable open cuts the torn bytes
/// off so that that record lands in place. Any segment before the newest left without its
/// record fails closed, naming that segment; a flipped byte in any record fails closed,
/// naming the seal records.
#[test]
fn seal_records_cut_short_fail_closed_unless_the_newest_segments_seal_was_torn() {
    let dog = Watchdog::new("seal cuts");
    let p = &pristine();
    let scratch = scratch();
    let work = scratch.path().join("data");
    copy_dir(&p.dir, &work);
    let seals = work.join("segments").join(SEALS_FILE);
    let mut tried = 0;
    // As built: every record seals a segment before the newest.
    for cut in (0..p.seals.len()).map(Some).chain([None]) {
        let case = format!("seal records cut at {cut:?}");
        dog.beat(&case);
        let whole_records = match cut {
            Some(cut) => {
                std::fs::write(&seals, &p.seals[..cut]).unwrap();
                cut / SEAL_RECORD_LEN
            }
            None => {
                std::fs::remove_file(&seals).unwrap();
                0
            }
        };
        for use_checkpoint in [true, false] {
            let config = StoreConfig { enable_index_checkpoint: use_checkpoint, ..read_only() };
            match Store::open(&work, config) {
                Err(Error::CorruptSegment { path, reason, .. }) => {
                    assert_eq!(path, p.seg_path(&work, whole_records), "{case}: {reason}");
                    assert!(reason.contains("no seal record"), "{case}: {reason}");
                }
                other => panic!("{case}: {:?}", other.map(|s| s.stats().unwrap().events)),
            }
            tried += 1;
        }
    }
    std::fs::write(&seals, &p.seals).unwrap();

    // A crash after sealing the segment before the newest, before the newest was created:
    // that sealed segment is the newest now, and its record is the final one.
    std::fs::remove_file(p.seg_path(&work, p.segments.len() - 1)).unwrap();
    let events = p.last().frames[0].seq;
    let final_record = p.seals.len() - SEAL_RECORD_LEN;
    let mut torn_states: Vec<(String, Vec<u8>)> = (final_record..=p.seals.len())
        .map(|cut| (format!("final record cut at {cut}"), p.seals[..cut].to_vec()))
        .collect();
    torn_states
        .push(("final record zeroed".into(), [&p.seals[..final_record], &[0; SEAL_RECORD_LEN]].concat()));
    for (state, bytes) in &torn_states {
        std::fs::write(&seals, bytes).unwrap();
        for use_checkpoint in [true, false] {
            let case = format!("newest segment sealed, {state} (checkpoint {use_checkpoint})");
            dog.beat(&case);
            let config = StoreConfig { enable_index_checkpoint: use_checkpoint, ..read_only() };
            let store = Store::open(&work, config).unwrap_or_else(|e| panic!("{case}: {e}"));
            check_prefix(&store, p, events, &case);
            assert_eq!(&std::fs::read(&seals).unwrap(), bytes, "{case}: a read-only open changed the seals");
            tried += 1;
        }
        // Writable: the store takes more events, rotates, and reopens to all of them.
        let case = format!("newest segment sealed, {state}, writable");
        dog.beat(&case);
        let rw = scratch.path().join("rw");
        copy_dir(&work, &rw);
        let store = Store::open(&rw, write_config()).unwrap_or_else(|e| panic!("{case}: {e}"));
        // Only the complete final record stays; a torn one is cut off.
        let kept = if *bytes == p.seals { p.seals.len() } else { final_record };
        let rw_seals = rw.join("segments").join(SEALS_FILE);
        assert_eq!(std::fs::read(&rw_seals).unwrap(), p.seals[..kept], "{case}: the torn record stays");
        let before = common::segment_paths(&rw).len();
        let mut appended = 0;
        while common::segment_paths(&rw).len() < before + 2 {
            store.append(request("e1", "after", &payload(appended))).unwrap();
            appended += 1;
        }
        store.close().unwrap();
        for use_checkpoint in [true, false] {
            let config = StoreConfig { enable_index_checkpoint: use_checkpoint, ..read_only() };
            let store = Store::open(&rw, config).unwrap_or_else(|e| panic!("{case}: reopen: {e}"));
            assert_eq!(store.stats().unwrap().events, events + appended as u64, "{case}");
            let report = store.verify(&mut |_, _| true).unwrap();
            assert!(report.ok(), "{case}: {:?}", report.problems);
        }
        std::fs::remove_dir_all(&rw).unwrap();
        tried += 1;
    }
    // A flipped byte is never a torn append, not even in the final record.
    std::fs::write(&seals, &p.seals).unwrap();
    for at in final_record..p.seals.len() {
        let case = format!("newest segment sealed, final record byte {at} flipped");
        dog.beat(&case);
        set_bytes(&seals, at, &[p.seals[at] ^ 0x10]);
        match Store::open(&work, read_only()) {
            Err(Error::CorruptSegment { path, offset, .. }) => {
                assert_eq!((path, offset), (seals.clone(), final_record as u64), "{case}")
            }
            other => panic!("{case}: {:?}", other.map(|s| s.stats().unwrap().events)),
        }
        set_bytes(&seals, at, &[p.seals[at]]);
        tried += 1;
    }
    println!("seal records cut, zeroed or flipped: {tried} cases");
}

// ---------------------------------------------------------------------------------------
// (b) Random single-byte flips.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Segment(usize),
    Seals,
    IndexCheckpoint,
    HiddenRanges,
    Cursor(usize),
}

#[derive(Default)]
struct Tally {
    tried: BTreeMap<&'static str, u64>,
    outcomes: BTreeMap<&'static str, u64>,
}

fn flip_count() -> usize {
    if let Ok(n) = std::env::var("EVENTPAK_SWEEP_FLIPS") {
        return n.trim().parse().expect("EVENTPAK_SWEEP_FLIPS must be a number");
    }
    if extended() {
        200_000
    } else {
        10_000
    }
}

/// Checks one flipped byte; the flip is in place in `work` and is undone by the caller.
fn check_flip(p: &Pristine, work: &Path, target: Target, at: usize, case: &str, tally: &mut Tally) {
    match target {
        Target::Segment(i) => {
            let path = p.seg_path(work, i);
            let segment = &p.segments[i];
            let in_last_batch = i + 1 == p.segments.len() && at >= p.last_batch_at;
            // The full scan keeps its verdicts: refused, the torn last batch cut, or (only
            // for the header padding, outside every CRC) opened whole, and then verify
            // reports it.
            let scan = StoreConfig { enable_index_checkpoint: false, ..read_only() };
            let (scan_out, scan_store) = outcome(Store::open(work, scan), p, work, case);
            check_segment_damage(&scan_out, p, &path, in_last_batch, case);
            let padding = (SEGMENT_PADDING_OFFSET..SEGMENT_HEADER_LEN).contains(&at);
            let key = match &scan_out {
                Outcome::Opened { events, .. } if *events == p.total() => {
                    assert!(padding, "{case}: a flipped byte went unnoticed by the scan");
                    let span = SEGMENT_PADDING_OFFSET as u64..=SEGMENT_HEADER_LEN as u64;
                    assert_verify_reports(scan_store.as_ref().unwrap(), &path, span, case);
                    "scan: opened whole (header padding), verify reports it"
                }
                Outcome::Opened { .. } => "scan: torn last batch cut",
                Outcome::Corrupt { .. } => "scan: CorruptSegment",
            };
            drop(scan_store);
            *tally.outcomes.entry(key).or_default() += 1;
            // Under the checkpoint.
            let frame = p.frame_at(i, at);
            let span = match frame {
                Some(f) => f.offset as u64..=(f.offset + f.len) as u64,
                None => 0..=SEGMENT_HEADER_LEN as u64,
            };
            let (out, store) = outcome(Store::open(work, read_only()), p, work, case);
            let verdict = check_damage_under_checkpoint(
                &out,
                store.as_ref(),
                p,
                &path,
                &scan_out,
                frame.map(|f| f.seq),
                span,
                false,
                case,
            );
            drop(store);
            *tally.outcomes.entry(verdict).or_default() += 1;
            let now = std::fs::read(&path).unwrap();
            assert_eq!(now.len(), segment.bytes.len(), "{case}: a read-only open changed the segment");
        }
        Target::Seals => {
            let seals = work.join("segments").join(SEALS_FILE);
            for use_checkpoint in [true, false] {
                let config = StoreConfig { enable_index_checkpoint: use_checkpoint, ..read_only() };
                let verdict = match Store::open(work, config) {
                    Err(Error::CorruptSegment { path, offset, .. }) => {
                        assert_eq!(path, seals, "{case}: CorruptSegment names another file");
                        let record = (at / SEAL_RECORD_LEN * SEAL_RECORD_LEN) as u64;
                        assert_eq!(offset, record, "{case}: the damaged record is at {record}");
                        "seals: CorruptSegment"
                    }
                    Err(e) => panic!("{case}: wrong error {e:?}"),
                    // A seal record is accepted only as a torn append: cut short or left as
                    // zeros at the end, which no single flipped byte makes of a record.
                    Ok(store) => panic!(
                        "{case}: a damaged seal record was accepted ({} events)",
                        store.stats().unwrap().events
                    ),
                };
                *tally.outcomes.entry(verdict).or_default() += 1;
            }
        }
        Target::IndexCheckpoint => {
            let store = Store::open(work, read_only()).unwrap_or_else(|e| panic!("{case}: {e}"));
            check_prefix(&store, p, p.total(), case);
            assert_eq!(store.stats().unwrap().recovery.index_checkpoint, "corrupt", "{case}");
            *tally.outcomes.entry("index.ckpt: corrupt, full scan").or_default() += 1;
        }
        Target::HiddenRanges => match Store::open(work, read_only()) {
            Err(Error::CorruptSegment { path, .. }) => {
                assert_eq!(path, work.join("hidden.ranges"), "{case}");
                *tally.outcomes.entry("hidden.ranges: CorruptSegment").or_default() += 1;
            }
            Err(e) => panic!("{case}: wrong error {e:?}"),
            Ok(_) => panic!("{case}: a damaged hidden.ranges was accepted"),
        },
        Target::Cursor(c) => {
            let (id, _, _) = &p.cursors[c];
            match CursorCheckpoint::load(work, id) {
                Err(Error::CursorCheckpointCorrupt { path, reason }) => {
                    assert_eq!(path, work.join("cursors").join(format!("{id}.ckpt")), "{case}");
                    assert!(!reason.is_empty());
                    *tally.outcomes.entry("cursor: CursorCheckpointCorrupt").or_default() += 1;
                }
                other => panic!("{case}: a damaged cursor checkpoint gave {other:?}"),
            }
        }
    }
}

/// The same flip through a writable open on a copy: same verdict as the read-only open,
/// nothing touched on failure, and on success a repaired log that reopens cleanly.
fn check_flip_writable(p: &Pristine, flipped: &Path, target: Target, case: &str) {
    if matches!(target, Target::Cursor(_)) {
        return;
    }
    let scratch = scratch();
    let rw = scratch.path().join("data");
    copy_dir(flipped, &rw);
    let before = common::snapshot(&rw);
    let expected = outcome(Store::open(flipped, read_only()), p, flipped, case).0;
    let (out, store) = outcome(Store::open(&rw, write_config()), p, &rw, case);
    assert_eq!(out, rebase(expected, flipped, &rw), "{case}: read-only and writable opens disagree");
    let Some(store) = store else {
        assert_eq!(common::snapshot(&rw), before, "{case}: a failed open changed files");
        return;
    };
    if let (Target::Segment(_), Outcome::Opened { events, .. }) = (target, &out) {
        if *events < p.total() {
            let last = p.seg_path(&rw, p.segments.len() - 1);
            assert_eq!(std::fs::metadata(&last).unwrap().len(), p.last_batch_at as u64, "{case}");
        }
    }
    let Outcome::Opened { events, .. } = out else { unreachable!() };
    assert_eq!(store.append(request("e1", "after", b"after-repair")).unwrap().global_sequence, events);
    store.close().unwrap();
    let store = Store::open(&rw, write_config()).unwrap_or_else(|e| panic!("{case}: reopen: {e}"));
    let stats = store.stats().unwrap();
    assert_eq!((stats.events, stats.recovery.torn_tail_bytes), (events + 1, 0), "{case}: reopen");
    assert_eq!(stats.recovery.index_checkpoint, "loaded", "{case}: reopen");
}

fn rebase(out: Outcome, from: &Path, to: &Path) -> Outcome {
    match out {
        Outcome::Corrupt { path } => Outcome::Corrupt { path: to.join(path.strip_prefix(from).unwrap()) },
        other => other,
    }
}

#[test]
fn random_byte_flips_are_recovered_or_refused() {
    let dog = Watchdog::new("flips");
    let p = &pristine();
    let seed = seed();
    let count = flip_count();
    println!("byte-flip sweep: seed {seed} (replay with EVENTPAK_SWEEP_SEED={seed}), {count} flips");
    let mut rng = rng::Rng(seed);
    let scratch = scratch();
    let work = scratch.path().join("data");
    copy_dir(&p.dir, &work);
    let segment_bytes: usize = p.segments.iter().map(|s| s.bytes.len()).sum();
    let last_segment = p.segments.len() - 1;
    let writable_every = if extended() { 100 } else { 50 };
    let mut tally = Tally::default();
    let started = Instant::now();
    for n in 0..count {
        // 42% anywhere in the segments, 15% in the last segment (the torn-tail rules),
        // 3% the seal records, 20% index.ckpt, 10% hidden.ranges, 10% cursor checkpoints.
        let roll = rng.index(100);
        let (target, at) = match roll {
            0..42 => {
                let mut at = rng.index(segment_bytes);
                let mut i = 0;
                while at >= p.segments[i].bytes.len() {
                    at -= p.segments[i].bytes.len();
                    i += 1;
                }
                (Target::Segment(i), at)
            }
            42..57 => (Target::Segment(last_segment), rng.index(p.last().bytes.len())),
            57..60 => (Target::Seals, rng.index(p.seals.len())),
            60..80 => (Target::IndexCheckpoint, rng.index(p.index_ckpt.len())),
            80..90 => (Target::HiddenRanges, rng.index(p.hidden.len())),
            _ => {
                let c = rng.index(p.cursors.len());
                (Target::Cursor(c), rng.index(p.cursors[c].1.len()))
            }
        };
        let mask = 1 + rng.index(255) as u8;
        let (path, original) = match target {
            Target::Segment(i) => (p.seg_path(&work, i), p.segments[i].bytes[at]),
            Target::Seals => (work.join("segments").join(SEALS_FILE), p.seals[at]),
            Target::IndexCheckpoint => (work.join("index.ckpt"), p.index_ckpt[at]),
            Target::HiddenRanges => (work.join("hidden.ranges"), p.hidden[at]),
            Target::Cursor(c) => {
                (work.join("cursors").join(format!("{}.ckpt", p.cursors[c].0)), p.cursors[c].1[at])
            }
        };
        let case = format!("flip #{n} (seed {seed}): {target:?} byte {at} ^= {mask:#04x}");
        dog.beat(&case);
        let label = match target {
            Target::Segment(_) => "segments",
            Target::Seals => "seals",
            Target::IndexCheckpoint => "index.ckpt",
            Target::HiddenRanges => "hidden.ranges",
            Target::Cursor(_) => "cursors",
        };
        *tally.tried.entry(label).or_default() += 1;
        set_bytes(&path, at, &[original ^ mask]);
        check_flip(p, &work, target, at, &case, &mut tally);
        if n % writable_every == 0 {
            check_flip_writable(p, &work, target, &case);
        }
        set_bytes(&path, at, &[original]);
    }
    assert_no_huge_allocation("flips");
    // The work copy is back to the pristine bytes: the sweep restored every flip and no
    // read-only open changed anything.
    let restored: Vec<Vec<u8>> = common::snapshot(&work).into_iter().map(|(_, b)| b).collect();
    let original: Vec<Vec<u8>> = common::snapshot(&p.dir).into_iter().map(|(_, b)| b).collect();
    assert_eq!(restored, original);
    println!("byte-flip sweep: {count} flips in {:?}", started.elapsed());
    for (what, n) in &tally.tried {
        println!("  tried {what}: {n}");
    }
    for (what, n) in &tally.outcomes {
        println!("  {what}: {n}");
    }
}

// ---------------------------------------------------------------------------------------
// Forged length fields: valid CRCs around absurd counts.
// ---------------------------------------------------------------------------------------

/// Body field offsets from the frame start.
const BODY: usize = FRAME_HEADER_LEN;

fn reseal_frame(bytes: &mut [u8], frame: FrameInfo, len: usize) {
    let end = (frame.offset + len).min(bytes.len());
    let crc = crc32c::crc32c(&bytes[frame.offset + FRAME_CRC_COVERS_FROM..end]);
    let at = frame.offset + FRAME_CRC_OFFSET;
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

fn reseal_file(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc32c::crc32c(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

/// One forged field: `(field offset in the frame, width, value)`.
fn frame_forgeries(frame: FrameInfo, file_len: usize) -> Vec<(&'static str, usize, usize, u64)> {
    let body_len = (frame.len - BODY) as u64;
    let to_end = (file_len - frame.offset - BODY) as u64;
    let mut out = Vec::new();
    let fixed = BODY_FIXED_LEN as u64;
    for v in [0, 1, fixed - 1, body_len - 1, body_len + 1, to_end, to_end + 1, 1 << 30, (1 << 30) + 1]
        .into_iter()
        .chain([u32::MAX as u64 - 1, u32::MAX as u64, 0x8000_0000, 0x7fff_ffff])
    {
        out.push(("body_len", FRAME_BODY_LEN_OFFSET, 4, v));
    }
    for v in [0, 2, u32::MAX as u64] {
        out.push(("batch_len", FRAME_BATCH_LEN_OFFSET, 4, v));
        out.push(("batch_index", FRAME_BATCH_INDEX_OFFSET, 4, v));
    }
    out.push(("global_sequence", FRAME_GLOBAL_SEQUENCE_OFFSET, 8, u64::MAX));
    out.push(("entity_len", BODY + BODY_ENTITY_LEN_OFFSET, 2, u16::MAX as u64));
    out.push(("scope_len", BODY + BODY_SCOPE_LEN_OFFSET, 2, u16::MAX as u64));
    out.push(("kind_len", BODY + BODY_KIND_LEN_OFFSET, 1, 255));
    out.push(("key_len", BODY + BODY_KEY_LEN_OFFSET, 1, 255));
    for v in [u32::MAX as u64, 0x8000_0000, body_len] {
        out.push(("payload_len", BODY + BODY_PAYLOAD_LEN_OFFSET, 4, v));
    }
    out
}

fn put(bytes: &mut [u8], at: usize, width: usize, value: u64) {
    bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

#[test]
fn forged_frame_and_header_fields_never_panic_allocate_or_lose_the_middle() {
    let dog = Watchdog::new("forged frames");
    let p = &pristine();
    let scratch = scratch();
    let work = scratch.path().join("data");
    copy_dir(&p.dir, &work);
    let mut tried = 0;
    let mut served_under_checkpoint = Vec::new();
    let mut verdicts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (i, segment) in p.segments.iter().enumerate() {
        let path = p.seg_path(&work, i);
        let last_segment = i + 1 == p.segments.len();
        // The first, a middle and the last frame of each segment.
        let picks = [0, segment.frames.len() / 2, segment.frames.len() - 1];
        for &f in &picks {
            let frame = segment.frames[f];
            for (field, at, width, value) in frame_forgeries(frame, segment.bytes.len()) {
                for resealed in [false, true] {
                    let case = format!("segment {i} frame {f} {field}={value} (CRC resealed: {resealed})");
                    dog.beat(&case);
                    let mut bytes = segment.bytes.clone();
                    put(&mut bytes, frame.offset + at, width, value);
                    if resealed {
                        let len = if field == "body_len" { BODY + value as usize } else { frame.len };
                        reseal_frame(&mut bytes, frame, len);
                    }
                    if bytes == segment.bytes {
                        continue;
                    }
                    std::fs::write(&path, &bytes).unwrap();
                    let in_last_batch = last_segment && frame.offset >= p.last_batch_at;
                    // The full scan decides authoritatively: every forgery is refused, or
                    // only the torn last batch is dropped.
                    let scan = StoreConfig { enable_index_checkpoint: false, ..read_only() };
                    let (out, _) = outcome(Store::open(&work, scan), p, &work, &case);
                    check_segment_damage(&out, p, &path, in_last_batch, &case);
                    let whole =
                        matches!(&out, Outcome::Opened { events, torn: 0, .. } if *events == p.total());
                    assert!(!whole, "{case}: undetected by the scan");
                    // Under the index checkpoint open checks each covered frame's CRC, sequence
                    // and id, not its batch position: a forgery whose CRC was recomputed and
                    // that still decodes (a forged batch position) may open, and is then
                    // refused on read or served as it is now on disk; either way verify
                    // reports it, at the frame or where its batch should have ended.
                    let (with_ckpt, store) = outcome(Store::open(&work, read_only()), p, &work, &case);
                    let span = frame.offset as u64..=(frame.offset + frame.len) as u64;
                    let verdict = check_damage_under_checkpoint(
                        &with_ckpt,
                        store.as_ref(),
                        p,
                        &path,
                        &out,
                        Some(frame.seq),
                        span,
                        resealed,
                        &case,
                    );
                    if let Outcome::Opened { damage, .. } = &with_ckpt {
                        let forged = &bytes[frame.offset..frame.offset + frame.len];
                        for (seq, served) in &damage.altered {
                            assert_eq!(&served[..], forged, "{case}: event {seq} served other bytes");
                        }
                        if !damage.altered.is_empty() {
                            served_under_checkpoint.push(case.clone());
                        }
                    }
                    *verdicts.entry(verdict).or_default() += 1;
                    assert_no_huge_allocation(&case);
                    tried += 1;
                }
            }
        }
        // Header fields with a resealed header CRC.
        for (field, at, width, value) in [
            ("segment_id", SEGMENT_ID_OFFSET, 8, u64::MAX),
            ("segment_id", SEGMENT_ID_OFFSET, 8, i as u64 + 1),
            ("base_sequence", SEGMENT_BASE_SEQUENCE_OFFSET, 8, u64::MAX),
            ("base_sequence", SEGMENT_BASE_SEQUENCE_OFFSET, 8, segment.frames[0].seq + 1),
            ("version", SEGMENT_VERSION_OFFSET, 4, 0),
            ("version", SEGMENT_VERSION_OFFSET, 4, 4),
            ("version", SEGMENT_VERSION_OFFSET, 4, u32::MAX as u64),
        ] {
            let case = format!("segment {i} header {field}={value}");
            dog.beat(&case);
            let mut bytes = segment.bytes.clone();
            put(&mut bytes, at, width, value);
            let crc = crc32c::crc32c(&bytes[..32]);
            bytes[32..36].copy_from_slice(&crc.to_le_bytes());
            std::fs::write(&path, &bytes).unwrap();
            let scan = StoreConfig { enable_index_checkpoint: false, ..read_only() };
            match Store::open(&work, scan) {
                Err(Error::CorruptSegment { path: bad, .. }) => assert_eq!(bad, path, "{case}"),
                other => panic!("{case}: {:?}", other.map(|s| s.stats().unwrap().events)),
            }
            // The checkpoint path does not re-check the base sequence of covered segments
            // (each read checks its frame's sequence): the log must still be intact, and
            // verify reports the header.
            match Store::open(&work, read_only()) {
                Err(Error::CorruptSegment { path: bad, .. }) => assert_eq!(bad, path, "{case}"),
                Ok(store) if field == "base_sequence" => {
                    check_prefix(&store, p, p.total(), &case);
                    assert_verify_reports(&store, &path, 0..=0, &case);
                    served_under_checkpoint.push(case.clone());
                }
                other => panic!("{case}: {:?}", other.map(|s| s.stats().unwrap().events)),
            }
            tried += 1;
        }
        std::fs::write(&path, &segment.bytes).unwrap();
    }
    println!("forged frame/header fields: {tried} cases (each opened with and without the checkpoint)");
    for (verdict, n) in &verdicts {
        println!("  forged frames, {verdict}: {n}");
    }
    println!(
        "  CRC-resealed forgeries served under a loaded checkpoint (a scan refuses them, verify reports them): {}",
        served_under_checkpoint.len()
    );
    for case in &served_under_checkpoint {
        println!("    {case}");
    }
}

/// Offsets of the count and length fields of `index.ckpt`, `(name, offset, width)`, and of
/// entry fields that recovery checks against the segments. (The entity, scope and kind ids
/// and clocks of entries are trusted once the CRC is good, as `docs/format.md` says, so a
/// forgery of those with a resealed CRC is outside what recovery can notice.)
fn index_checkpoint_fields(b: &[u8]) -> Vec<(String, usize, usize)> {
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    let mut fields = vec![("version".to_owned(), 8, 4), ("n_segments".to_owned(), 20, 4)];
    let mut at = 24 + u32_at(20) * 16;
    let mut entities = 0;
    for (t, table) in ["entities", "scopes", "kinds"].into_iter().enumerate() {
        let count = u32_at(at);
        if t == 0 {
            entities = count;
        }
        fields.push((format!("{table} count"), at, 4));
        at += 4;
        for n in 0..count {
            if n < 2 || n + 1 == count {
                fields.push((format!("{table} name {n} length"), at, 4));
            }
            at += 4 + u32_at(at);
        }
    }
    // Version 4: the entity postings that point at holes (none in this uncompacted store).
    assert_eq!(u64_at(at), 0, "the pristine store has no holes");
    fields.push(("n_hole_postings".to_owned(), at, 8));
    at += 8;
    let n_events = u64_at(at);
    fields.push(("n_events".to_owned(), at, 8));
    at += 8;
    for (n, entry) in (0..n_events).map(|n| (n, at + n * 53)) {
        if n < 2 || n + 1 == n_events {
            for (name, off, width) in
                [("segment", 0, 4), ("offset", 4, 8), ("len", 12, 4), ("visible", 36, 1)]
            {
                fields.push((format!("entry {n} {name}"), entry + off, width));
            }
        }
    }
    at += n_events * 53 + entities * 32;
    let n_keys = u64_at(at);
    fields.push(("n_keys".to_owned(), at, 8));
    at += 8;
    for n in 0..n_keys {
        if n < 2 {
            fields.push((format!("key {n} length"), at, 4));
        }
        at += 4 + u32_at(at) + 8;
    }
    // Version 2: the causal links `(effect sequence, cause sequence)`, then the correlations
    // `(sequence, correlation id)`. Their entries are trusted like the entries' names; their
    // counts must be refused.
    for (section, entry_len) in [("n_links", 16), ("n_correlations", 8 + 16)] {
        let count = u64_at(at);
        assert!(count > 0, "the pristine checkpoint holds {section}");
        fields.push((section.to_owned(), at, 8));
        at += 8 + count * entry_len;
    }
    // Version 3: the tag names and each tag's postings, then the tracking names and the
    // tracking frames (36 bytes each).
    let tags = u32_at(at);
    assert!(tags > 0, "the pristine checkpoint holds tags");
    fields.push(("tag names count".to_owned(), at, 4));
    at += 4;
    for n in 0..tags {
        if n < 2 {
            fields.push((format!("tag name {n} length"), at, 4));
        }
        at += 4 + u32_at(at);
    }
    for n in 0..tags {
        if n < 2 {
            fields.push((format!("tag {n} postings count"), at, 8));
        }
        at += 8 + u64_at(at) * 8;
    }
    let names = u32_at(at);
    fields.push(("tracking names count".to_owned(), at, 4));
    at += 4;
    for _ in 0..names {
        at += 4 + u32_at(at);
    }
    fields.push(("n_tracking".to_owned(), at, 8));
    at += 8 + u64_at(at) * 36;
    assert_eq!(at + 4, b.len(), "index.ckpt layout parsed to the end");
    fields
}

#[test]
fn forged_counts_in_index_and_cursor_checkpoints_and_hidden_ranges_are_refused() {
    let dog = Watchdog::new("forged counts");
    let p = &pristine();
    let scratch = scratch();
    let work = scratch.path().join("data");
    copy_dir(&p.dir, &work);
    let mut tried = 0;
    let values = |width: usize, current: u64| -> Vec<u64> {
        let max = if width == 8 { u64::MAX } else { (1u64 << (8 * width)) - 1 };
        let mut v = vec![max, max - 1, max / 2 + 1, max / 53, max / 53 + 1, 0, 1, current + 1];
        v.extend(current.checked_sub(1));
        if width >= 4 {
            v.extend([0x8000_0000, 1 << 24, 0xffff]);
        }
        v.retain(|&x| x <= max && x != current);
        v.sort_unstable();
        v.dedup();
        v
    };

    // index.ckpt: a damaged or forged checkpoint only costs a scan.
    let ckpt = work.join("index.ckpt");
    for (field, at, width) in index_checkpoint_fields(&p.index_ckpt) {
        let mut current = [0u8; 8];
        current[..width].copy_from_slice(&p.index_ckpt[at..at + width]);
        for value in values(width, u64::from_le_bytes(current)) {
            for resealed in [true, false] {
                let case = format!("index.ckpt {field}={value} (resealed {resealed})");
                dog.beat(&case);
                let mut bytes = p.index_ckpt.clone();
                put(&mut bytes, at, width, value);
                if resealed {
                    reseal_file(&mut bytes);
                }
                std::fs::write(&ckpt, &bytes).unwrap();
                let store = Store::open(&work, read_only()).unwrap_or_else(|e| panic!("{case}: {e}"));
                check_prefix(&store, p, p.total(), &case);
                let verdict = store.stats().unwrap().recovery.index_checkpoint;
                assert!(matches!(verdict, "corrupt" | "stale"), "{case}: checkpoint {verdict}");
                assert_no_huge_allocation(&case);
                tried += 1;
            }
        }
    }
    std::fs::write(&ckpt, &p.index_ckpt).unwrap();

    // hidden.ranges: open fence marker, count, and range bounds.
    let hidden = work.join("hidden.ranges");
    let count = u32::from_le_bytes(p.hidden[20..24].try_into().unwrap()) as u64;
    let mut forged: Vec<(&str, usize, usize, u64)> =
        values(4, count).into_iter().map(|v| ("count", 20, 4, v)).collect();
    forged.extend([("version", 8, 4, 2), ("range end", 32, 8, 0), ("range start", 24, 8, u64::MAX)]);
    for (field, at, width, value) in forged {
        let case = format!("hidden.ranges {field}={value}");
        dog.beat(&case);
        let mut bytes = p.hidden.clone();
        put(&mut bytes, at, width, value);
        reseal_file(&mut bytes);
        std::fs::write(&hidden, &bytes).unwrap();
        match Store::open(&work, read_only()) {
            Err(Error::CorruptSegment { path, .. }) => assert_eq!(path, hidden, "{case}"),
            other => panic!("{case}: {:?}", other.map(|s| s.stats().unwrap().events)),
        }
        assert_no_huge_allocation(&case);
        tried += 1;
    }
    std::fs::write(&hidden, &p.hidden).unwrap();

    // Cursor checkpoints: identity length, flags and version, resealed.
    for (id, good, _) in &p.cursors {
        let path = work.join("cursors").join(format!("{id}.ckpt"));
        let identity_len = u32::from_le_bytes(good[29..33].try_into().unwrap()) as u64;
        let mut forged: Vec<(&str, usize, usize, u64)> =
            values(4, identity_len).into_iter().map(|v| ("identity_len", 29, 4, v)).collect();
        forged.extend([
            ("flags", 12, 1, 8),
            ("flags", 12, 1, 0xff),
            ("version", 8, 4, 0),
            ("version", 8, 4, 2),
        ]);
        for (field, at, width, value) in forged {
            let case = format!("cursor {id} {field}={value}");
            dog.beat(&case);
            let mut bytes = good.clone();
            put(&mut bytes, at, width, value);
            reseal_file(&mut bytes);
            std::fs::write(&path, &bytes).unwrap();
            let loaded = CursorCheckpoint::load(&work, id);
            assert!(matches!(loaded, Err(Error::CursorCheckpointCorrupt { .. })), "{case}: {loaded:?}");
            assert_no_huge_allocation(&case);
            tried += 1;
        }
        // Every truncation of a cursor checkpoint and of hidden.ranges is refused too.
        for cut in 0..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap();
            let loaded = CursorCheckpoint::load(&work, id);
            assert!(matches!(loaded, Err(Error::CursorCheckpointCorrupt { .. })), "cut {id} at {cut}");
            tried += 1;
        }
        std::fs::write(&path, good).unwrap();
    }
    for cut in 0..p.hidden.len() {
        std::fs::write(&hidden, &p.hidden[..cut]).unwrap();
        let opened = Store::open(&work, read_only());
        assert!(matches!(opened, Err(Error::CorruptSegment { .. })), "cut hidden.ranges at {cut}");
        tried += 1;
    }
    std::fs::write(&hidden, &p.hidden).unwrap();
    // And every truncation of the index checkpoint costs only a scan.
    for cut in 0..p.index_ckpt.len() {
        dog.beat(&format!("cut index.ckpt at {cut}"));
        std::fs::write(&ckpt, &p.index_ckpt[..cut]).unwrap();
        let store =
            Store::open(&work, read_only()).unwrap_or_else(|e| panic!("cut index.ckpt at {cut}: {e}"));
        let stats = store.stats().unwrap();
        assert_eq!((stats.events, stats.recovery.index_checkpoint), (p.total(), "corrupt"), "cut at {cut}");
        tried += 1;
    }
    std::fs::write(&ckpt, &p.index_ckpt).unwrap();
    println!("forged counts and cut sidecars: {tried} cases");
}

// ---------------------------------------------------------------------------------------
// Regression: the torn-tail check must not be super-linear in the size of the torn frame.
// ---------------------------------------------------------------------------------------

/// Opens `dir` read-only on another thread; `None` when it has not returned by `deadline`.
fn open_within(dir: &Path, deadline: Duration) -> Option<eventpak_core::Result<(u64, u64)>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        let result = Store::open(&dir, read_only()).map(|s| {
            let stats = s.stats().unwrap();
            (stats.events, stats.recovery.torn_tail_bytes)
        });
        let _ = tx.send(result);
    });
    rx.recv_timeout(deadline).ok()
}

/// A crash while writing one large event leaves a torn frame with no intact frame after
/// it. Deciding that nothing intact follows must cost time linear in the tail, not a CRC
/// over the rest of the tail at every offset whose bytes happen to read as a plausible
/// length (that is cubic in practice: a torn 15 MiB event took 7.5 s to open in a release
/// build, a 24 MiB one minutes in a debug build, a 512 MiB one would take hours). The
/// deadline below is a hang guard: a linear check passes this test in about 1.5 s (debug).
#[test]
fn a_torn_tail_of_one_large_event_is_recovered_without_a_superlinear_scan() {
    const EVENT: usize = 24 << 20;
    let deadline = Duration::from_secs(30);
    let scratch = scratch();
    let dir = scratch.path().join("data");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let payload: Vec<u8> = (0..EVENT)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let config = StoreConfig { max_event_bytes: 32 << 20, segment_max_bytes: 256 << 20, ..write_config() };
    {
        let store = Store::open(&dir, config).unwrap();
        store.append(request("e0", "small", b"before")).unwrap();
        store.append(request("e1", "large", &payload)).unwrap();
        store.close().unwrap();
    }
    drop(payload);
    std::fs::remove_file(dir.join("index.ckpt")).unwrap();
    let seg = common::segment_paths(&dir)[0].clone();
    let bytes = std::fs::read(&seg).unwrap();
    let large_at = parse_frames(&bytes)[1].offset;
    // (1) Cut short: the write never finished.
    std::fs::write(&seg, &bytes[..bytes.len() - 1000]).unwrap();
    let torn = (bytes.len() - 1000 - large_at) as u64;
    match open_within(&dir, deadline) {
        Some(Ok(found)) => assert_eq!(found, (1, torn)),
        Some(Err(e)) => panic!("a torn large event must be cut as a torn tail: {e}"),
        None => panic!("open did not finish within {deadline:?}: torn-tail check is super-linear"),
    }
    // (2) Complete but damaged near its end, nothing after it.
    let mut damaged = bytes.clone();
    let at = damaged.len() - 10;
    damaged[at] ^= 0x5a;
    std::fs::write(&seg, &damaged).unwrap();
    let torn = (bytes.len() - large_at) as u64;
    match open_within(&dir, deadline) {
        Some(Ok(found)) => assert_eq!(found, (1, torn)),
        Some(Err(e)) => panic!("a damaged final large event is a torn tail: {e}"),
        None => panic!("open did not finish within {deadline:?}: torn-tail check is super-linear"),
    }
}

// ---------------------------------------------------------------------------------------
// Regression (found by fuzz/open_store): a half-created newest segment does not make the
// segment before it "the last segment". That one was fsynced when it was sealed (rotation
// syncs the old segment before creating the next), so a crash cannot have torn it: damage
// to its final frame is corruption, and its events must never be dropped silently.
// ---------------------------------------------------------------------------------------

#[test]
fn a_sealed_segment_before_a_half_created_one_has_no_torn_tail() {
    let p = &pristine();
    let scratch = scratch();
    let sealed = p.segments.len() - 2;
    let sealed_frames = &p.segments[sealed].frames;
    let last_frame = *sealed_frames.last().unwrap();
    for (newest_len, label) in [(0, "empty"), (20, "header cut short")] {
        let work = scratch.path().join(format!("half-{newest_len}"));
        copy_dir(&p.dir, &work);
        let newest = p.seg_path(&work, p.segments.len() - 1);
        std::fs::write(&newest, &p.last().bytes[..newest_len]).unwrap();
        // Without other damage the half-created file goes and everything before it stays.
        let store = Store::open(&work, read_only()).unwrap();
        check_prefix(&store, p, p.last().frames[0].seq, label);
        assert_eq!(store.stats().unwrap().recovery.removed_segments, vec![newest.clone()]);
        drop(store);
        // One damaged byte in the sealed segment's final frame is corruption.
        let path = p.seg_path(&work, sealed);
        let at = last_frame.offset + last_frame.len - 5;
        set_bytes(&path, at, &[p.segments[sealed].bytes[at] ^ 0x31]);
        for use_checkpoint in [true, false] {
            let case =
                format!("newest segment {label}, sealed segment byte {at} damaged (ckpt {use_checkpoint})");
            let config = StoreConfig { enable_index_checkpoint: use_checkpoint, ..read_only() };
            match Store::open(&work, config) {
                Err(Error::CorruptSegment { path: bad, .. }) => assert_eq!(bad, path, "{case}"),
                Err(e) => panic!("{case}: wrong error {e:?}"),
                Ok(store) => {
                    let stats = store.stats().unwrap();
                    panic!(
                        "{case}: opened with {} of the {} events before the half-created segment \
                         (torn tail of {} bytes cut from {:?}): a durable event was dropped silently",
                        stats.events,
                        p.last().frames[0].seq,
                        stats.recovery.torn_tail_bytes,
                        stats.recovery.torn_tail_segment
                    )
                }
            }
        }
    }
}
