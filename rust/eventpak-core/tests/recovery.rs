//! Torn tails, corruption and half-created segments.

mod common;

use common::*;
use eventpak_core::{Error, Region, Store, StoreConfig, SyncMode};

fn durable_store(dir: &std::path::Path, n: usize) -> Vec<u8> {
    let store = open(dir, StoreConfig { sync: SyncMode::Always, ..config() });
    fill(&store, n);
    store.close().unwrap();
    std::fs::remove_file(dir.join("index.ckpt")).unwrap();
    std::fs::read(&segment_paths(dir)[0]).unwrap()
}

#[test]
fn torn_last_frame_is_cut_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = durable_store(dir.path(), 5);
    let (last_at, last_len) = *frames(&bytes).last().unwrap();
    for cut in last_at..last_at + last_len {
        let seg = &segment_paths(dir.path())[0];
        std::fs::write(seg, &bytes[..cut]).unwrap();
        let store = open(dir.path(), config());
        let stats = store.stats().unwrap();
        assert_eq!(stats.events, 4, "cut at {cut}");
        assert_eq!(stats.recovery.torn_tail_bytes, (cut - last_at) as u64);
        assert_eq!(std::fs::metadata(seg).unwrap().len(), last_at as u64);
        assert_eq!(store.append(request("e1", "k", b"new")).unwrap().global_sequence, 4);
        store.close().unwrap();
        std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
    }
}

#[test]
fn a_partly_written_batch_is_never_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    fill(&store, 2);
    store
        .append_batch(vec![request("a", "k", b"1"), request("b", "k", b"2"), request("c", "k", b"3")])
        .unwrap();
    store.close().unwrap();
    let seg = segment_paths(dir.path())[0].clone();
    let bytes = std::fs::read(&seg).unwrap();
    let f = frames(&bytes);
    for cut in [f[3].0, f[3].0 + 10, f[4].0 + 1, f[4].0 + f[4].1 - 1] {
        std::fs::write(&seg, &bytes[..cut]).unwrap();
        let _ = std::fs::remove_file(dir.path().join("index.ckpt"));
        let store = open(dir.path(), config());
        assert_eq!(store.stats().unwrap().events, 2, "cut at {cut}");
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), f[2].0 as u64);
        store.close().unwrap();
    }
}

#[test]
fn damage_before_the_tail_fails_closed_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = durable_store(dir.path(), 6);
    let f = frames(&bytes);
    let seg = segment_paths(dir.path())[0].clone();
    for (i, &(at, len)) in f[..f.len() - 1].iter().enumerate() {
        for probe in [at, at + 9, at + len / 2, at + len - 1] {
            let mut bad = bytes.clone();
            bad[probe] ^= 0x10;
            std::fs::write(&seg, &bad).unwrap();
            let before = snapshot(dir.path());
            let err = eventpak_core::Store::open(dir.path(), config()).err().expect("must fail");
            assert!(matches!(err, Error::CorruptSegment { .. }), "frame {i} byte {probe}: {err}");
            assert_eq!(snapshot(dir.path()), before);
        }
    }
}

#[test]
fn a_forged_length_in_the_last_segment_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = durable_store(dir.path(), 6);
    let f = frames(&bytes);
    let seg = segment_paths(dir.path())[0].clone();
    for forged in [u32::MAX, (bytes.len() - f[2].0 - 24) as u32] {
        let mut bad = bytes.clone();
        bad[f[2].0..f[2].0 + 4].copy_from_slice(&forged.to_le_bytes());
        std::fs::write(&seg, &bad).unwrap();
        let before = snapshot(dir.path());
        let err = eventpak_core::Store::open(dir.path(), config()).err().expect("must fail");
        assert!(matches!(err, Error::CorruptSegment { .. }), "{forged}: {err}");
        assert_eq!(snapshot(dir.path()), before);
    }
}

/// Under a valid index checkpoint, open still checks every covered frame's CRC: damage to
/// an earlier covered frame fails the open closed (a scan decides), changing nothing. Damage
/// done while the store is open is found by the first read of that event (never served) and
/// by `verify`.
#[test]
fn damage_under_a_valid_index_checkpoint_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    fill(&store, 6);
    store.close().unwrap();
    let seg = segment_paths(dir.path())[0].clone();
    let pristine = std::fs::read(&seg).unwrap();
    let located = frames(&pristine);
    let (at, len) = located[1];
    let mut damaged = pristine.clone();
    damaged[at + len / 2] ^= 0x01;

    std::fs::write(&seg, &damaged).unwrap();
    let before = snapshot(dir.path());
    for read_only in [true, false] {
        let Err(err) = Store::open(dir.path(), StoreConfig { read_only, ..config() }) else {
            panic!("damage at open must refuse the open (read_only {read_only})")
        };
        assert!(matches!(err, Error::CorruptSegment { offset, .. } if offset == at as u64), "{err}");
        assert_eq!(snapshot(dir.path()), before);
    }

    std::fs::write(&seg, &pristine).unwrap();
    let store = open(dir.path(), StoreConfig { read_only: true, ..config() });
    assert_eq!(store.stats().unwrap().recovery.index_checkpoint, "loaded");
    // The same bytes in place (the mapping sees them): damage after the open.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, &damaged[at..at + len], at as u64))
        .unwrap();
    let err = store.read_events(&[1]).expect_err("a damaged frame must not be served");
    assert!(matches!(err, Error::CorruptSegment { offset, .. } if offset == at as u64), "{err}");
    let others = store.read_events(&[0, 2, 3, 4, 5]).unwrap();
    for (event, &(at, len)) in
        others.iter().zip(located.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, f)| f))
    {
        assert_eq!(event.frame_bytes(), &pristine[at..at + len]);
    }
    let report = store.verify(&mut |_, _| true).unwrap();
    assert!(!report.ok());
    assert!(
        report.problems.iter().all(|p| p.path == seg && p.offset == at as u64 && p.sequence == Some(1)),
        "{:?}",
        report.problems
    );
    drop(store);
}

/// A log large enough that open checks its covered frames on several threads (when the
/// machine has more than one core): damage at either end of any thread's share of the log,
/// for any number of threads, fails the open closed and changes nothing, and the intact log
/// still opens from its checkpoint.
#[test]
fn damage_anywhere_in_a_large_covered_log_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100_000;
    let store = open(dir.path(), config());
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk.iter().map(|i| request(&format!("e{}", i % 97), "k", format!("p{i}").as_bytes()));
        store.append_batch(batch.collect()).unwrap();
    }
    store.close().unwrap();
    let seg = segment_paths(dir.path())[0].clone();
    let pristine = std::fs::read(&seg).unwrap();
    let located = frames(&pristine);
    assert_eq!(located.len(), n);
    // The first and last frame of every thread's share, for 2 to 8 threads (the most an
    // open uses), then two frames inside the log.
    let mut damaged_at: Vec<usize> = (2..=8usize)
        .flat_map(|threads| {
            let per = n.div_ceil(threads);
            (1..threads).flat_map(move |t| [t * per - 1, t * per])
        })
        .chain([3, n - 2])
        .collect();
    damaged_at.sort_unstable();
    damaged_at.dedup();
    for seq in damaged_at {
        let (at, len) = located[seq];
        let mut damaged = pristine.clone();
        damaged[at + len / 2] ^= 0x40;
        std::fs::write(&seg, &damaged).unwrap();
        let before = snapshot(dir.path());
        let Err(err) = Store::open(dir.path(), StoreConfig { read_only: true, ..config() }) else {
            panic!("damage to event {seq} must refuse the open")
        };
        assert!(matches!(err, Error::CorruptSegment { offset, .. } if offset == at as u64), "{seq}: {err}");
        assert_eq!(snapshot(dir.path()), before);
    }
    std::fs::write(&seg, &pristine).unwrap();
    let store = open(dir.path(), StoreConfig { read_only: true, ..config() });
    assert_eq!(store.stats().unwrap().recovery.index_checkpoint, "loaded");
    let last = store.read_events(&[n as u64 - 1]).unwrap();
    assert_eq!(last[0].frame_bytes(), &pristine[located[n - 1].0..]);
}

#[test]
fn a_damaged_last_frame_followed_by_zeros_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = durable_store(dir.path(), 4);
    let (at, len) = *frames(&bytes).last().unwrap();
    bytes[at + 30] ^= 0x01;
    bytes.extend_from_slice(&[0; 100]);
    std::fs::write(&segment_paths(dir.path())[0], &bytes).unwrap();
    let store = open(dir.path(), config());
    let stats = store.stats().unwrap();
    assert_eq!((stats.events, stats.recovery.torn_tail_bytes), (3, len as u64 + 100));
}

#[test]
fn junk_segment_files_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    durable_store(dir.path(), 3);
    let junk = dir.path().join("segments").join("00000000000000000009.seg");
    std::fs::write(&junk, vec![0xAB; 500]).unwrap();
    let before = snapshot(dir.path());
    let err = eventpak_core::Store::open(dir.path(), config()).err().expect("must fail");
    assert!(matches!(err, Error::CorruptSegment { .. }));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn newest_segment_with_a_cut_header_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    durable_store(dir.path(), 3);
    let half = dir.path().join("segments").join("00000000000000000001.seg");
    std::fs::write(&half, b"EVPK").unwrap();
    let store = open(dir.path(), config());
    let stats = store.stats().unwrap();
    assert_eq!(stats.events, 3);
    assert_eq!(stats.recovery.removed_segments, vec![half.clone()]);
    assert!(!half.exists());
    assert_eq!(store.query(&Region::all(), None, None).unwrap().len(), 3);
}

#[test]
fn stale_or_corrupt_index_checkpoint_falls_back_to_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    fill(&store, 10);
    store.close().unwrap();
    let ckpt = dir.path().join("index.ckpt");
    let old = std::fs::read(&ckpt).unwrap();
    let store = open(dir.path(), config());
    fill(&store, 5);
    let expected = store.query(&Region::all(), None, None).unwrap();
    store.close().unwrap();

    std::fs::write(&ckpt, &old).unwrap(); // an older, still valid prefix
    let store = open(dir.path(), config());
    assert_eq!(store.stats().unwrap().recovery.index_checkpoint, "loaded");
    assert_eq!(store.stats().unwrap().recovery.scanned_events, 5);
    assert_eq!(store.query(&Region::all(), None, None).unwrap(), expected);
    store.close().unwrap();

    let mut bad = std::fs::read(&ckpt).unwrap();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::write(&ckpt, &bad).unwrap();
    let store = open(dir.path(), config());
    assert_eq!(store.stats().unwrap().recovery.index_checkpoint, "corrupt");
    assert_eq!(store.query(&Region::all(), None, None).unwrap(), expected);
}

/// A checkpoint large enough to have its CRC checked on a second thread while it is parsed
/// loads when intact and is refused (a full scan takes over) when one byte is damaged.
#[test]
fn a_large_index_checkpoint_is_checked_while_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), StoreConfig { segment_max_bytes: 64 << 20, ..config() });
    for chunk in 0..25 {
        let batch = (0..4000).map(|i| request(&format!("e{}", (chunk * 4000 + i) % 97), "k", b"p")).collect();
        store.append_batch(batch).unwrap();
    }
    store.close().unwrap();
    let ckpt = dir.path().join("index.ckpt");
    let len = std::fs::metadata(&ckpt).unwrap().len();
    assert!(len > 4 << 20, "the checkpoint is only {len} bytes");
    let store = open(dir.path(), config());
    assert_eq!(store.stats().unwrap().recovery.index_checkpoint, "loaded");
    store.close().unwrap();
    let mut bytes = std::fs::read(&ckpt).unwrap();
    bytes[len as usize / 2] ^= 0x10;
    std::fs::write(&ckpt, &bytes).unwrap();
    let store = open(dir.path(), StoreConfig { read_only: true, ..config() });
    let stats = store.stats().unwrap();
    assert_eq!((stats.recovery.index_checkpoint, stats.events), ("corrupt", 100_000));
}
