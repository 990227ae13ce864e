"""Gap observations: a cursor with gaps enabled records every delivery that jumps a cancelled
fence range, clipped to [expected, delivered), in a ring buffer keeping the newest entries."""

from __future__ import annotations

import eventpak as ep

R = ep.Region


def _seqs(events):
    return [e.global_sequence for e in events]


def _gaps(cursor):
    return [(g.expected_sequence, g.delivered_sequence, g.cancelled_ranges) for g in cursor.take_gaps()]


def _cancel(store, coord, count, entity="a"):
    with store.fence() as fence:
        seqs = [fence.append(coord(entity), "k", f"hidden-{i}").global_sequence for i in range(count)]
        fence.cancel()
    return seqs


def _visible(store, coord, entity="a"):
    return store.append(coord(entity), "k", "visible").global_sequence


def _gap_cursor(store, region=None, capacity=16):
    return store.cursor(region or R.all()).with_gap_config(ep.CursorGapConfig.enabled(capacity))


def test_gap_config_values():
    enabled = ep.CursorGapConfig.enabled(5)
    assert enabled.capacity == 5
    assert ep.CursorGapConfig.disabled().capacity is None
    assert enabled == ep.CursorGapConfig.enabled(5)
    assert enabled != ep.CursorGapConfig.disabled()


def test_a_delivery_over_a_cancelled_range_records_a_gap(store, coord):
    _visible(store, coord)  # 0
    assert _cancel(store, coord, 3) == [1, 2, 3]
    assert _visible(store, coord) == 4
    cursor = _gap_cursor(store)
    assert _seqs(cursor.poll_batch(10)) == [0, 4]
    (gap,) = cursor.take_gaps()
    assert isinstance(gap, ep.GapObservation)
    assert gap.expected_sequence == 1
    assert gap.delivered_sequence == 4
    assert gap.cancelled_ranges == [(1, 4)]


def test_take_gaps_drains(store, coord):
    _visible(store, coord)
    _cancel(store, coord, 1)
    _visible(store, coord)
    cursor = _gap_cursor(store)
    cursor.poll_batch(10)
    assert _gaps(cursor) == [(1, 2, [(1, 2)])]
    assert cursor.take_gaps() == []


def test_no_gap_without_cancelled_ranges(store, coord):
    for _ in range(5):
        _visible(store, coord)
    cursor = _gap_cursor(store)
    assert _seqs(cursor.poll_batch(10)) == [0, 1, 2, 3, 4]
    assert cursor.take_gaps() == []


def test_region_filter_jumps_are_not_gaps(store, coord):
    _visible(store, coord, "a")
    _visible(store, coord, "other")
    _visible(store, coord, "other")
    _visible(store, coord, "a")
    cursor = _gap_cursor(store, R.entity("a"))
    assert _seqs(cursor.poll_batch(10)) == [0, 3]
    assert cursor.take_gaps() == []


def test_disabled_gap_config_records_nothing(store, coord):
    _visible(store, coord)
    _cancel(store, coord, 2)
    _visible(store, coord)
    plain = store.cursor(R.all())
    assert _seqs(plain.poll_batch(10)) == [0, 3]
    assert plain.take_gaps() == []
    disabled = store.cursor(R.all()).with_gap_config(ep.CursorGapConfig.disabled())
    assert _seqs(disabled.poll_batch(10)) == [0, 3]
    assert disabled.take_gaps() == []


def test_cancelled_range_at_sequence_zero_is_a_gap_of_a_fresh_cursor(store, coord):
    assert _cancel(store, coord, 2) == [0, 1]
    assert _visible(store, coord) == 2
    cursor = _gap_cursor(store)
    assert _seqs(cursor.poll_batch(10)) == [2]
    assert _gaps(cursor) == [(0, 2, [(0, 2)])]


def test_one_observation_per_jumping_delivery(store, coord):
    _visible(store, coord)  # 0
    _cancel(store, coord, 1)  # 1
    _visible(store, coord)  # 2
    _visible(store, coord)  # 3
    _cancel(store, coord, 2)  # 4, 5
    _visible(store, coord)  # 6
    cursor = _gap_cursor(store)
    assert _seqs(cursor.poll_batch(10)) == [0, 2, 3, 6]
    assert _gaps(cursor) == [(1, 2, [(1, 2)]), (4, 6, [(4, 6)])]


def test_gaps_are_recorded_across_polls_and_pulls(store, coord):
    _visible(store, coord)
    cursor = _gap_cursor(store)
    assert _seqs(cursor.poll_batch(10)) == [0]
    _cancel(store, coord, 2)  # 1, 2: the cursor waits at its end while they are cancelled
    _visible(store, coord)  # 3
    assert _seqs(cursor.pull_batch(10, 10)) == [3]
    assert _gaps(cursor) == [(1, 3, [(1, 3)])]


def test_region_cursor_gap_lists_every_cancelled_range_it_jumped(store, coord):
    _visible(store, coord, "a")  # 0
    _cancel(store, coord, 2, "a")  # 1, 2
    _visible(store, coord, "b")  # 3: visible but not in the region
    _cancel(store, coord, 1, "b")  # 4
    _visible(store, coord, "a")  # 5
    cursor = _gap_cursor(store, R.entity("a"))
    assert _seqs(cursor.poll_batch(10)) == [0, 5]
    assert _gaps(cursor) == [(1, 5, [(1, 3), (4, 5)])]


def test_cancelled_ranges_are_clipped_to_the_jump(store, coord):
    _visible(store, coord)  # 0
    assert _cancel(store, coord, 5) == [1, 2, 3, 4, 5]
    _visible(store, coord)  # 6
    cursor = _gap_cursor(store)
    cursor.seek(2, True)  # resume from a position inside the cancelled range
    assert _seqs(cursor.poll_batch(10)) == [6]
    assert _gaps(cursor) == [(3, 6, [(3, 6)])]


def test_adjacent_cancelled_fences_are_reported_within_one_observation(store, coord):
    _visible(store, coord)  # 0
    _cancel(store, coord, 2)  # 1, 2
    _cancel(store, coord, 1)  # 3
    _visible(store, coord)  # 4
    cursor = _gap_cursor(store)
    assert _seqs(cursor.poll_batch(10)) == [0, 4]
    (gap,) = _gaps(cursor)
    expected, delivered, ranges = gap
    assert (expected, delivered) == (1, 4)
    # merged or not, the ranges cover exactly the cancelled sequences 1..3
    assert sorted(s for start, end in ranges for s in range(start, end)) == [1, 2, 3]
    assert all(1 <= start < end <= 4 for start, end in ranges)


def test_ring_buffer_keeps_the_newest_observations(store, coord):
    _visible(store, coord)  # 0
    expected = []
    for _ in range(5):
        (hidden,) = _cancel(store, coord, 1)
        delivered = _visible(store, coord)
        expected.append((hidden, delivered, [(hidden, hidden + 1)]))
    cursor = _gap_cursor(store, capacity=3)
    assert _seqs(cursor.poll_batch(100)) == [0, 2, 4, 6, 8, 10]
    assert _gaps(cursor) == expected[-3:]  # oldest dropped, oldest-first order kept


def test_ring_buffer_of_capacity_one(store, coord):
    _visible(store, coord)
    for _ in range(3):
        _cancel(store, coord, 1)
        _visible(store, coord)
    cursor = _gap_cursor(store, capacity=1)
    cursor.poll_batch(100)
    assert _gaps(cursor) == [(5, 6, [(5, 6)])]


def test_ring_buffer_fills_again_after_draining(store, coord):
    _visible(store, coord)
    for _ in range(2):
        _cancel(store, coord, 1)
        _visible(store, coord)
    cursor = _gap_cursor(store, capacity=2)
    cursor.poll_batch(100)
    assert len(cursor.take_gaps()) == 2
    for _ in range(3):
        _cancel(store, coord, 1)
        _visible(store, coord)
    cursor.poll_batch(100)
    assert _gaps(cursor) == [(7, 8, [(7, 8)]), (9, 10, [(9, 10)])]


def test_with_gap_config_returns_a_new_cursor_at_the_same_position(store, coord):
    for _ in range(3):
        _visible(store, coord)
    original = store.cursor(R.entity("a"))
    assert _seqs(original.poll_batch(2)) == [0, 1]
    _cancel(store, coord, 2)  # 3, 4
    _visible(store, coord)  # 5
    observing = original.with_gap_config(ep.CursorGapConfig.enabled(4))
    assert observing is not original
    assert (observing.position, observing.started) == (1, True)
    assert observing.region == original.region
    assert _seqs(observing.poll_batch(10)) == [2, 5]
    assert _gaps(observing) == [(3, 5, [(3, 5)])]
    # the original did not move and records nothing
    assert (original.position, original.started) == (1, True)
    assert _seqs(original.poll_batch(10)) == [2, 5]
    assert original.take_gaps() == []


def test_with_gap_config_of_an_unstarted_cursor_keeps_sequence_zero(store, coord):
    _visible(store, coord)
    observing = store.cursor(R.all()).with_gap_config(ep.CursorGapConfig.enabled(2))
    assert (observing.position, observing.started) == (0, False)
    assert _seqs(observing.poll_batch(10)) == [0]


def test_gaps_are_observed_after_reopen(open_store, coord):
    store = open_store()
    _visible(store, coord)
    _cancel(store, coord, 2)
    _visible(store, coord)
    store.close()
    reopened = open_store(enable_index_checkpoint=False)
    cursor = _gap_cursor(reopened)
    assert _seqs(cursor.poll_batch(10)) == [0, 3]
    assert _gaps(cursor) == [(1, 3, [(1, 3)])]


def test_an_unstarted_seek_past_a_cancelled_range_records_no_gap(store, coord):
    assert _cancel(store, coord, 2) == [0, 1]
    for _ in range(5):
        _visible(store, coord)  # 2..6
    cursor = _gap_cursor(store)
    cursor.seek(4, False)
    assert _seqs(cursor.poll_batch(10)) == [4, 5, 6]
    assert cursor.take_gaps() == []


def test_an_unstarted_seek_into_a_cancelled_range_records_the_jump_from_the_seek(store, coord):
    _visible(store, coord)  # 0
    assert _cancel(store, coord, 4) == [1, 2, 3, 4]
    assert _visible(store, coord) == 5
    cursor = _gap_cursor(store)
    cursor.seek(3, False)
    assert _seqs(cursor.poll_batch(10)) == [5]
    assert _gaps(cursor) == [(3, 5, [(3, 5)])]


def test_a_cursor_resumed_from_an_unstarted_checkpoint_records_gaps_from_its_position(store, coord):
    assert _cancel(store, coord, 2) == [0, 1]
    for _ in range(3):
        _visible(store, coord)  # 2..4
    moved = store.cursor(R.all())
    moved.seek(3, False)
    moved.commit("unstarted")
    resumed = _gap_cursor(store)
    assert resumed.resume("unstarted")
    assert (resumed.position, resumed.started) == (3, False)
    assert _seqs(resumed.poll_batch(10)) == [3, 4]
    assert resumed.take_gaps() == []
