//! The tag filter of a query: an event matches when every required tag's postings hold
//! its sequence. Candidates arrive in ascending order, so each postings list is only ever
//! walked forward: checking a whole scan costs one pass over each list at most.

/// The postings of a region's tags, each cut to what is still ahead of the scan.
pub(super) struct TagCheck<'a> {
    lists: Vec<&'a [u64]>,
}

impl<'a> TagCheck<'a> {
    /// A check over these postings lists (each sorted, sliced to the scan's start).
    pub(super) fn new(lists: Vec<&'a [u64]>) -> Self {
        TagCheck { lists }
    }

    /// True when every list holds `seq`. Calls must come with ascending sequences.
    #[inline]
    pub(super) fn accepts(&mut self, seq: u64) -> bool {
        self.lists.iter_mut().all(|list| {
            *list = &list[gallop_to(list, seq)..];
            list.first() == Some(&seq)
        })
    }
}

/// The first position of `list` (sorted) holding a value of at least `seq`: a doubling
/// search from the front, then a binary search in the last step, so skipping `k` entries
/// costs `O(log k)` however long the list is.
#[inline]
fn gallop_to(list: &[u64], seq: u64) -> usize {
    if list.first().is_none_or(|&first| first >= seq) {
        return 0;
    }
    let mut hi = 1;
    while hi < list.len() && list[hi] < seq {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(list.len());
    lo + list[lo..hi].partition_point(|&s| s < seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_must_hold_the_sequence() {
        let (a, b) = (vec![1, 3, 5, 7, 9, 11], vec![3, 4, 9, 10]);
        let mut check = TagCheck::new(vec![&a, &b]);
        let found: Vec<u64> = (0..12).filter(|&s| check.accepts(s)).collect();
        assert_eq!(found, [3, 9]);
        for seq in 0..20 {
            assert_eq!(gallop_to(&a, seq), a.partition_point(|&s| s < seq), "{seq}");
        }
    }
}
