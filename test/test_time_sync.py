"""grasping.time_sync: newest set within slop, older messages dropped, bounded queues, monotonic output."""
import itertools
import math
import random
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dense_descriptor_grasp.grasping.time_sync import ApproximateTimeSynchronizer, stamp_seconds

STREAMS = ("color", "depth", "camera_info")


def test_identical_stamps_emit_on_the_last_arrival_in_stream_order():
    sync = ApproximateTimeSynchronizer(STREAMS, slop=0.05)
    assert sync.add("depth", 1.0, "d1") is None
    assert sync.add("camera_info", 1.0, "i1") is None
    assert sync.add("color", 1.0, "c1") == ("c1", "d1", "i1")
    assert sync.emitted == 1 and sync.pending() == {name: [] for name in STREAMS}


def test_stamps_within_slop_match_and_beyond_slop_do_not():
    sync = ApproximateTimeSynchronizer(STREAMS, slop=0.05)
    sync.add("color", 2.00, "c")
    sync.add("depth", 2.03, "d")
    assert sync.add("camera_info", 2.051, "i_far") is None  # 0.051 s from the colour frame
    assert sync.add("camera_info", 2.04, "i") == ("c", "d", "i")


def test_a_set_exactly_slop_wide_matches_despite_float_rounding():
    sync = ApproximateTimeSynchronizer(STREAMS, slop=0.03)
    sync.add("color", 0.29, "c")
    sync.add("depth", 0.29, "d")
    assert 0.32 - 0.29 > 0.03  # float seconds
    assert sync.add("camera_info", 0.32, "i") == ("c", "d", "i")


def test_the_newest_complete_set_wins_and_older_messages_are_dropped():
    sync = ApproximateTimeSynchronizer(STREAMS, slop=0.01, queue_size=5)
    for t in (0.0, 0.1, 0.2):
        sync.add("color", t, f"c{t}")
        sync.add("depth", t, f"d{t}")
    assert sync.add("camera_info", 0.2, "i0.2") == ("c0.2", "d0.2", "i0.2")
    assert sync.pending() == {name: [] for name in STREAMS}
    assert sync.dropped == 4  # c0.0, c0.1, d0.0, d0.1 never used
    # a late camera_info for 0.1 can no longer make a set: the older colour/depth frames are gone
    assert sync.add("camera_info", 0.1, "late") is None


def test_messages_at_or_before_the_last_emitted_stamp_of_their_stream_are_refused():
    sync = ApproximateTimeSynchronizer(STREAMS, slop=0.05)
    for name in STREAMS:
        sync.add(name, 5.0, name)
    dropped = sync.dropped
    assert sync.add("color", 5.0, "again") is None and sync.add("color", 4.0, "older") is None
    assert sync.dropped == dropped + 2 and sync.pending()["color"] == []


def test_ties_prefer_the_tightest_set():
    sync = ApproximateTimeSynchronizer(STREAMS, slop=0.05, queue_size=4)
    sync.add("color", 1.00, "c_early")
    sync.add("color", 1.04, "c_late")
    sync.add("depth", 1.00, "d_early")
    sync.add("depth", 1.04, "d_late")
    assert sync.add("camera_info", 1.00, "i") == ("c_early", "d_early", "i")
    assert sync.pending() == {"color": [1.04], "depth": [1.04], "camera_info": []}


def test_queues_never_grow_when_one_stream_is_silent():
    sync = ApproximateTimeSynchronizer(STREAMS, slop=0.05, queue_size=3)
    for k in range(1000):
        sync.add("color", k / 30, k)
        sync.add("depth", k / 30, k)
    assert all(len(q) <= 3 for q in sync.pending().values())
    assert sync.pending()["color"] == [997 / 30, 998 / 30, 999 / 30]
    assert sync.dropped == 2 * (1000 - 3)
    assert sync.add("camera_info", 999 / 30 + 0.001, "info") == (999, 999, "info")


def test_reset_forgets_the_past_after_a_clock_jump():
    sync = ApproximateTimeSynchronizer(2, slop=0.0)
    sync.add(0, 100.0, "a")
    assert sync.add(1, 100.0, "b") == ("a", "b")
    assert sync.add(0, 1.0, "restarted") is None  # refused: before the last emitted stamp
    sync.reset()
    sync.add(0, 1.0, "a1")
    assert sync.add(1, 1.0, "b1") == ("a1", "b1")


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="slop"):
        ApproximateTimeSynchronizer(STREAMS, slop=-0.1)
    with pytest.raises(ValueError, match="queue_size"):
        ApproximateTimeSynchronizer(STREAMS, queue_size=0)
    with pytest.raises(ValueError, match="unique"):
        ApproximateTimeSynchronizer(("color", "color"))
    sync = ApproximateTimeSynchronizer(STREAMS)
    with pytest.raises(ValueError, match="unknown stream 'rgb'"):
        sync.add("rgb", 0.0, None)
    with pytest.raises(ValueError, match="finite"):
        sync.add("color", math.nan, None)


def test_stamp_seconds_reads_ros_time_and_headers():
    stamp = SimpleNamespace(sec=12, nanosec=500_000_000)
    assert stamp_seconds(stamp) == 12.5
    assert stamp_seconds(SimpleNamespace(stamp=stamp, frame_id="cam")) == 12.5
    assert stamp_seconds(3) == 3.0


def test_realistic_jittered_camera_streams():
    """30 Hz colour/depth with +-5 ms jitter and info stamped like colour, arriving shuffled in small bursts."""
    rng = random.Random(0)
    sync = ApproximateTimeSynchronizer(STREAMS, slop=0.02, queue_size=3)
    arrivals = []
    for k in range(300):
        t = k / 30
        arrivals += [(t + 0.001 * rng.random(), "color", t),
                     (t + 0.005 * rng.random(), "depth", t + rng.uniform(-0.005, 0.005)),
                     (t + 0.003 * rng.random(), "camera_info", t)]
    arrivals.sort()
    emitted = [sync.add(name, stamp, (name, stamp)) for _, name, stamp in arrivals]
    emitted = [s for s in emitted if s is not None]
    assert len(emitted) >= 290  # nearly every frame makes a set
    for matched in emitted:
        stamps = [stamp for _, stamp in matched]
        assert [name for name, _ in matched] == list(STREAMS)
        assert max(stamps) - min(stamps) <= 0.02
        assert abs(matched[0][1] - matched[2][1]) < 1e-12  # colour paired with its own camera info


def brute_force_newest(queues, slop):
    """Greatest earliest stamp over all complete sets within slop (None when there is none)."""
    best = None
    for combo in itertools.product(*queues):
        if combo and max(combo) - min(combo) <= slop:
            best = min(combo) if best is None else max(best, min(combo))
    return best


@settings(max_examples=150, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 60)), min_size=1, max_size=60),
       slop=st.integers(0, 5), queue_size=st.integers(1, 4))
def test_property_bounded_monotonic_and_newest(events, slop, queue_size):
    """Invariants under any arrival order: queues bounded, sets within slop, each stream's output strictly
    increasing, and the emitted set is the newest one a brute force finds in the queues at that moment."""
    # integer stamps and slop: exact arithmetic for the brute force
    sync = ApproximateTimeSynchronizer(3, slop=slop, queue_size=queue_size)
    last = [-math.inf] * 3
    for stream, tick in events:
        stamp = tick
        before = sync.pending()
        matched = sync.add(stream, stamp, (stream, stamp))
        assert all(len(q) <= queue_size for q in sync.pending().values())
        if stamp > last[stream]:  # accepted: the queue it matched against is `before` plus this message, trimmed
            queue = sorted(before[stream] + [stamp])[-queue_size:]
            queues = [queue if s == stream else before[s] for s in range(3)]
            expected = brute_force_newest(queues, slop)
            assert (matched is None) == (expected is None), (queues, matched)
        if matched is not None:
            stamps = [t for _, t in matched]
            assert [s for s, _ in matched] == [0, 1, 2]
            assert max(stamps) - min(stamps) <= slop
            assert min(stamps) == expected
            assert all(t > last[s] for s, t in enumerate(stamps))
            last = stamps
