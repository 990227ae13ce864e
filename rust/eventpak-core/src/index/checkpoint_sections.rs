//! The index checkpoint's sections after the chain heads and idempotency keys: the causal
//! indexes (version 2), then the tag postings and the tracking records (version 3).
//!
//! ```text
//! | n_links u64 | n × (effect sequence u64, cause sequence u64)
//! | n_correlations u64 | n × (sequence u64, correlation id [16])
//! | tag names: count u32, count × (len u32, UTF-8) | per tag, in id order: n u64, n × sequence u64
//! | tracking names: count u32, count × (len u32, UTF-8)
//! | n_tracking u64 | n × (segment position u32, frame offset u64, frame length u32,
//!                         name id u32, position u64, sequence u64)
//! ```

use std::mem::size_of;

use super::checkpoint::{read_names, write_names, Reader, Writer};
use super::{Index, TrackedFrame};

/// A causal link: effect sequence, cause sequence.
const LINK_LEN: usize = 2 * size_of::<u64>();
/// A correlation: event sequence, correlation id.
const CORRELATION_LEN: usize = size_of::<u64>() + size_of::<u128>();
/// One posting of a tag: an event sequence.
const POSTING_LEN: usize = size_of::<u64>();
/// A tracking frame: segment position, offset, length, name id, position, sequence.
const TRACKED_LEN: usize = 3 * size_of::<u32>() + 3 * size_of::<u64>();

/// Writes the causal, tag and tracking sections of `index`.
pub(super) fn write_sections(w: &mut Writer, index: &Index) {
    let links = index.causal.links();
    w.u64(links.len() as u64);
    for (seq, cause) in links {
        w.u64(seq);
        w.u64(cause);
    }
    let correlations = index.causal.correlations();
    w.u64(correlations.len() as u64);
    for (seq, correlation) in correlations {
        w.u64(seq);
        w.0.extend_from_slice(&correlation.to_be_bytes());
    }
    write_names(w, &index.tag_names);
    for postings in &index.tag_postings {
        w.u64(postings.len() as u64);
        for &seq in postings {
            w.u64(seq);
        }
    }
    write_names(w, &index.tracking.names);
    w.u64(index.tracking.frames.len() as u64);
    for f in &index.tracking.frames {
        w.u32(f.segment);
        w.u64(f.offset);
        w.u32(f.len);
        w.u32(f.name);
        w.u64(f.position);
        w.u64(f.sequence);
    }
}

/// Reads the causal sections into `index` (of `n` events). Links and correlations are
/// stored sorted by event, so each posting list is rebuilt in commit order.
pub(super) fn read_causal(r: &mut Reader<'_>, index: &mut Index, n: u64) -> Result<(), String> {
    let mut last = None;
    for _ in 0..r.count(true, LINK_LEN)? {
        let (seq, cause) = (r.u64()?, r.u64()?);
        if seq >= n || cause >= seq || last.is_some_and(|l| l >= seq) {
            return Err("causal link out of range or order".into());
        }
        last = Some(seq);
        index.causal.link(seq, cause);
    }
    let mut last = None;
    for _ in 0..r.count(true, CORRELATION_LEN)? {
        let seq = r.u64()?;
        let correlation = u128::from_be_bytes(r.take(size_of::<u128>())?.try_into().unwrap());
        if seq >= n || last.is_some_and(|l| l >= seq) || index.event_ids[seq as usize] == correlation {
            return Err("correlation entry out of range or order".into());
        }
        last = Some(seq);
        index.causal.correlate(seq, correlation);
    }
    Ok(())
}

/// Reads the tag names and each tag's postings: ascending sequences of visible events.
pub(super) fn read_tags(r: &mut Reader<'_>, index: &mut Index) -> Result<(), String> {
    index.tag_names = read_names(r)?;
    let mut postings = Vec::with_capacity(index.tag_names.len());
    for _ in 0..index.tag_names.len() {
        let n = r.count(true, POSTING_LEN)?;
        let mut list: Vec<u64> = Vec::with_capacity(n);
        for _ in 0..n {
            let seq = r.u64()?;
            let visible = index.entries.get(seq as usize).is_some_and(|e| e.visible);
            if !visible || list.last().is_some_and(|&last| last >= seq) {
                return Err("tag posting out of range or order".into());
            }
            list.push(seq);
        }
        postings.push(list);
    }
    index.tag_postings = postings;
    Ok(())
}

/// Reads the tracking names and frames (in log order, each name used); the newest
/// position of each name is rebuilt from them.
pub(super) fn read_tracking(r: &mut Reader<'_>, index: &mut Index, segments: usize) -> Result<(), String> {
    let names = read_names(r)?;
    let mut positions: Vec<Option<u64>> = vec![None; names.len()];
    let n = r.count(true, TRACKED_LEN)?;
    let mut frames: Vec<TrackedFrame> = Vec::with_capacity(n);
    for _ in 0..n {
        let f = TrackedFrame {
            segment: r.u32()?,
            offset: r.u64()?,
            len: r.u32()?,
            name: r.u32()?,
            position: r.u64()?,
            sequence: r.u64()?,
        };
        let in_order = frames.last().is_none_or(|l| (l.segment, l.offset) < (f.segment, f.offset));
        let sequence_ok = f.sequence <= index.len() && frames.last().is_none_or(|l| l.sequence <= f.sequence);
        let Some(recorded) = positions.get_mut(f.name as usize) else {
            return Err("tracking name id out of range".into());
        };
        if f.segment as usize >= segments || !in_order || !sequence_ok {
            return Err("tracking frame out of range or order".into());
        }
        *recorded = Some(recorded.map_or(f.position, |p| p.max(f.position)));
        frames.push(f);
    }
    let positions: Option<Vec<u64>> = positions.into_iter().collect();
    index.tracking.positions = positions.ok_or("a tracking name without a record")?;
    index.tracking.names = names;
    index.tracking.frames = frames;
    Ok(())
}
