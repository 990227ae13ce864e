//! `verify` for what version 3 adds to the log: tracking records (framed in their batch,
//! positions moving forward per name, each where the index says) and the tag index
//! (every tag of a visible event posted, no posting without its tag).

use std::path::Path;

use super::frames::Step;
use super::Checker;
use crate::segment::TrackingView;

impl Checker<'_> {
    /// Checks a tracking record at `at` of segment position `segment`.
    pub(super) fn check_tracking(
        &mut self,
        path: &Path,
        segment: u32,
        at: u64,
        t: &TrackingView<'_>,
    ) -> Step {
        // The events before it in its batch may have been removed.
        if t.global_sequence > self.next_seq
            && self.snapshot.compacted.covers(self.next_seq, t.global_sequence)
        {
            self.next_seq = t.global_sequence;
        }
        let seq = self.next_seq;
        if t.global_sequence != seq {
            self.problem(
                path,
                at,
                Some(seq),
                format!("tracking record holds sequence {}", t.global_sequence),
            );
        }
        let (expected, open_len) = self.batch;
        let misplaced = t.batch_index != expected || (expected > 0 && t.batch_len != open_len);
        if misplaced && !std::mem::take(&mut self.batch_lost) && !self.loose_batches {
            self.problem(path, at, Some(seq), "tracking record out of place in its batch");
        }
        self.batch_lost = false;
        self.batch = (0, 0);
        self.tracking_seen += 1;
        let (name, position) = (t.name(), t.position());
        match self.tracking_last.get_mut(name) {
            Some(last) if *last >= position => {
                let why = format!("tracking {name:?} goes from position {last} to {position}");
                self.problem(path, at, Some(seq), why);
            }
            Some(last) => *last = position,
            None => {
                self.tracking_last.insert(name.to_owned(), position);
            }
        }
        let index = self.store.shared.index.read();
        let agrees = index.tracking.frame_at(segment, at).is_some_and(|f| {
            f.len as usize == t.len
                && f.sequence == t.global_sequence
                && f.position == position
                && **index.tracking.names.name(f.name) == *name
        });
        drop(index);
        if !agrees {
            self.problem(path, at, Some(seq), "the index disagrees with the tracking record");
        }
        Step::Checked(t.len as u64)
    }

    /// After the walk: every tracking record and tag posting the index holds for the
    /// checked events was found in the log.
    pub(super) fn check_record_counts(&mut self) {
        let path = self.store.shared.data_dir.join(crate::segment::SEGMENTS_DIR);
        let (tracked, postings) = (self.snapshot.tracking_records, self.snapshot.tag_postings);
        if self.tracking_seen != tracked {
            let why =
                format!("the log holds {} of the {tracked} indexed tracking records", self.tracking_seen);
            self.problem(&path, 0, None, why);
        }
        if self.tag_postings_seen != postings {
            let why =
                format!("the tag index holds {postings} postings, the events {}", self.tag_postings_seen);
            self.problem(&path, 0, None, why);
        }
    }
}
