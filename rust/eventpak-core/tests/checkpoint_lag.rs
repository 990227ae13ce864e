//! Listing durable cursor checkpoints with the lag of their regions, and the append counters.

mod common;

use common::*;
use eventpak_core::{AppendRequest, Cursor, CursorCheckpoint, Region};

#[test]
fn checkpoints_are_listed_by_id_with_their_region_s_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    for i in 0..12u8 {
        let entity = if i % 3 == 0 { "b" } else { "a" };
        store.append(request(entity, "k", &[i])).unwrap();
    }
    let a = Region::all().with_entity("a").unwrap();
    let mut cursor = Cursor::new(a.clone());
    let first = cursor.poll_batch(&store, 3).unwrap();
    cursor.commit(&store, "reader").unwrap();
    Cursor::new(Region::all()).commit(&store, "fresh").unwrap();
    // A checkpoint naming no region, and one whose identity this version does not write.
    let unknown = Some("entity=*|scope=*|kind=*|clock=*|colour=x".to_owned());
    CursorCheckpoint { region_identity: unknown, ..Default::default() }.save(dir.path(), "later").unwrap();
    CursorCheckpoint::default().save(dir.path(), "bare").unwrap();

    let listed = store.checkpoints().unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["bare", "fresh", "later", "reader"]);
    assert!(listed[0].lag.is_none() && listed[2].lag.is_none());
    let fresh = listed[1].lag.unwrap();
    let all = store.query(&Region::all(), None, None).unwrap();
    assert_eq!((fresh.events, fresh.oldest_timestamp_us), (12, Some(all[0].view().timestamp_us())));
    let reader = &listed[3];
    assert_eq!(reader.checkpoint.position, first[2].global_sequence());
    let unread = store.query(&a, Some(first[2].global_sequence()), None).unwrap();
    assert_eq!(unread.len(), 8 - 3);
    let lag = reader.lag.unwrap();
    assert_eq!((lag.events, lag.oldest_timestamp_us), (5, Some(unread[0].view().timestamp_us())));
    assert!(reader.saved_at_us > 0);

    let caught_up = store.region_lag(&a, all[11].global_sequence(), true).unwrap();
    assert_eq!((caught_up.events, caught_up.oldest_timestamp_us), (0, None));
}

#[test]
fn appends_are_counted_once_per_call_and_retries_by_key_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    store.append(request("a", "k", b"1")).unwrap();
    store.append_batch(vec![request("a", "k", b"2"), request("b", "k", b"3")]).unwrap();
    let keyed = || AppendRequest { idempotency_key: Some(b"key".to_vec()), ..request("c", "k", b"4") };
    store.append(keyed()).unwrap();
    store.append(keyed()).unwrap(); // answered from its key: writes nothing
    let stats = store.stats().unwrap();
    assert_eq!((stats.appends, stats.appended_events, stats.events), (3, 4, 4));
}
