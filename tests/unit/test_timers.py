"""The timer wheel: many deadlines on one reactor timer."""

from __future__ import annotations

import sys

import pytest
from twisted.internet.task import Clock

from txsockjs._core.timers import TimerWheel


def make() -> tuple[Clock, list[str], TimerWheel[str]]:
    clock = Clock()
    fired: list[str] = []
    return clock, fired, TimerWheel(clock, 0.5, fired.append)


def test_fires_at_deadline_not_before() -> None:
    clock, fired, wheel = make()
    wheel.schedule("a", 5)
    clock.advance(4.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == ["a"]
    assert clock.getDelayedCalls() == []


def test_many_items_share_one_reactor_timer() -> None:
    clock, fired, wheel = make()
    for i in range(1000):
        wheel.schedule(f"s{i}", 5 + (i % 7) * 0.1)
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(6)
    assert len(fired) == 1000
    assert clock.getDelayedCalls() == []


def test_reschedule_replaces_and_cancel_forgets() -> None:
    clock, fired, wheel = make()
    wheel.schedule("a", 1)
    wheel.schedule("b", 1)
    wheel.schedule("a", 3)
    wheel.cancel("b")
    clock.advance(2)
    assert fired == []
    clock.advance(1)
    assert fired == ["a"]
    assert len(wheel) == 0


def test_an_earlier_deadline_rearms_the_timer() -> None:
    clock, fired, wheel = make()
    wheel.schedule("late", 10)
    wheel.schedule("early", 1)
    clock.advance(1)
    assert fired == ["early"]
    clock.advance(9)
    assert fired == ["early", "late"]


def test_fire_may_reschedule() -> None:
    clock = Clock()
    fired: list[float] = []

    def again(item: str) -> None:
        fired.append(clock.seconds())
        if len(fired) < 3:
            wheel.schedule(item, 2)

    wheel: TimerWheel[str] = TimerWheel(clock, 0.5, again)
    wheel.schedule("x", 2)
    clock.pump([1] * 10)
    assert fired == [2, 4, 6]
    assert clock.getDelayedCalls() == []


def test_stop_cancels_everything() -> None:
    clock, fired, wheel = make()
    wheel.schedule("a", 1)
    wheel.stop()
    assert clock.getDelayedCalls() == []
    clock.advance(2)
    assert fired == []


def test_rescheduling_in_a_tick_does_not_delay_nearer_slots() -> None:
    clock = Clock()
    fired: list[tuple[str, float]] = []

    def beat(item: str) -> None:
        fired.append((item, clock.seconds()))
        wheel.schedule(item, 5)

    wheel: TimerWheel[str] = TimerWheel(clock, 0.25, beat)
    wheel.schedule("first", 5)
    clock.advance(0.5)
    wheel.schedule("second", 5)  # due at 5.5, half a second after "first"
    clock.pump([0.25] * 44)
    assert fired == [("first", 5), ("second", 5.5), ("first", 10), ("second", 10.5)]


def test_periodic_items_keep_their_cadence_when_ticks_run_late() -> None:
    clock = Clock()
    fired: list[float] = []

    def beat(item: str) -> None:
        fired.append(clock.seconds())
        wheel.schedule(item, 5)

    wheel: TimerWheel[str] = TimerWheel(clock, 0.25, beat)
    wheel.schedule("hb", 5)
    for _ in range(3):
        clock.advance(5.1)  # each tick runs 0.1 s late, as a busy reactor's would
    assert fired == pytest.approx([5.1, 10.2, 15.3])  # due at 5, 10, 15: lateness does not add up


def test_schedule_cancel_cycles_on_a_reused_slot_leave_a_bounded_heap() -> None:
    clock, fired, wheel = make()
    wheel.schedule("live", 100)
    for _ in range(100_000):
        wheel.schedule("x", 5)
        wheel.cancel("x")
    # One live item: its slot, plus at most the slack the wheel tolerates.
    assert len(wheel._heap) <= 2 * len(wheel) + 64
    assert len(wheel._slots) == len(wheel._heap)
    wheel.schedule("x", 5)
    clock.advance(100)
    assert fired == ["x", "live"]
    assert clock.getDelayedCalls() == []


def test_schedule_cancel_cycles_over_many_slots_leave_a_bounded_heap() -> None:
    clock, fired, wheel = make()
    wheel.schedule("live", 100_000)
    for i in range(100_000):
        wheel.schedule("x", 1 + i * 0.5)  # a new slot every time
        wheel.cancel("x")
        wheel.schedule(i, 7)  # and a reschedule that empties nothing it did not fill
        wheel.cancel(i)
    assert len(wheel._heap) <= 2 * len(wheel) + 64
    clock.advance(100_000)
    assert fired == ["live"]


def test_rebuilding_the_heap_while_a_tick_fires_loses_no_item() -> None:
    clock = Clock()
    fired: list[tuple[int, float]] = []

    def beat(item: int) -> None:
        fired.append((item, clock.seconds()))
        if clock.seconds() == 1:
            # Every item moves to a slot of its own, often past twice the live count.
            wheel.schedule(item, 1 + item * 0.5)
            for j in range(3):  # slots left empty: the heap outgrows the live items
                wheel.schedule(("stale", item, j), 500 + item * 3 + j)
                wheel.cancel(("stale", item, j))

    wheel: TimerWheel[object] = TimerWheel(clock, 0.5, beat)  # type: ignore[arg-type]
    rebuilds: list[int] = []
    compact = wheel._compact

    def counted() -> None:
        rebuilds.append(len(wheel))
        compact()

    wheel._compact = counted  # type: ignore[method-assign]
    for item in range(200):
        wheel.schedule(item, 1)
    clock.advance(1)
    assert rebuilds, "the heap was never rebuilt during the tick"
    assert sorted(item for item, _ in fired) == list(range(200))
    fired.clear()
    clock.pump([0.5] * 400)
    assert sorted(fired) == [(item, 2 + item * 0.5) for item in range(200)]
    assert len(wheel) == 0
    assert clock.getDelayedCalls() == []


@pytest.mark.parametrize("early", [False, True])
def test_rounding_to_a_slot_is_late_or_early_never_both(early: bool) -> None:
    """Off the slot grid, a deadline fires up to a slot late, or (``early``) up to one early."""
    clock = Clock()
    fired: list[float] = []
    wheel: TimerWheel[str] = TimerWheel(
        clock, 0.5, lambda item: fired.append(clock.seconds()), early=early
    )
    clock.advance(0.25)
    wheel.schedule("a", 5)  # due at 5.25
    clock.advance(4.5)
    assert fired == []
    clock.advance(0.25)  # 5.0: the slot of 5.25 rounded down
    assert fired == ([5.0] if early else [])
    clock.advance(0.5)  # 5.5: the slot of 5.25 rounded up
    assert fired == ([5.0] if early else [5.5])


def periodic(period: float = 5) -> tuple[Clock, list[tuple[str, float]], TimerWheel[str]]:
    clock = Clock()
    fired: list[tuple[str, float]] = []
    wheel: TimerWheel[str] = TimerWheel(
        clock, 0.25, lambda item: fired.append((item, clock.seconds())), period=period
    )
    return clock, fired, wheel


def test_a_periodic_item_fires_every_period_until_cancelled() -> None:
    clock, fired, wheel = periodic()
    wheel.schedule("a", 5)
    clock.advance(2.5)
    wheel.schedule("b", 5)
    clock.pump([0.25] * 70)  # to 20 s
    assert fired == [
        ("a", 5),
        ("b", 7.5),
        ("a", 10),
        ("b", 12.5),
        ("a", 15),
        ("b", 17.5),
        ("a", 20),
    ]
    assert len(clock.getDelayedCalls()) == 1
    wheel.cancel("a")
    wheel.cancel("b")
    assert clock.getDelayedCalls() == []
    clock.advance(30)
    assert len(fired) == 7


def test_periodic_items_cancelled_or_moved_while_their_bucket_fires() -> None:
    clock = Clock()
    fired: list[tuple[str, float]] = []

    def beat(item: str) -> None:
        fired.append((item, clock.seconds()))
        if item == "a" and clock.seconds() == 5:
            wheel.cancel("a")  # itself
            wheel.cancel("b")  # a bucket neighbour (it still fires in this tick)
            wheel.schedule("c", 1)  # another one moves, to 6 and every 5 s from there

    wheel: TimerWheel[str] = TimerWheel(clock, 0.25, beat, period=5)
    for item in "abc":
        wheel.schedule(item, 5)
    clock.pump([0.25] * 60)  # to 15 s
    assert sorted(fired) == [("a", 5), ("b", 5), ("c", 5), ("c", 6), ("c", 11)]
    assert len(wheel) == 1


def test_a_periodic_bucket_joins_one_already_at_its_next_slot() -> None:
    clock, fired, wheel = periodic()
    wheel.schedule("a", 5)
    wheel.schedule("c", 10)  # first due at 10, the slot "a" moves to at 5
    wheel.schedule("b", 9.75)
    clock.pump([0.25] * 60)  # to 15 s
    assert fired == [
        ("a", 5),
        ("b", 9.75),
        ("c", 10),
        ("a", 10),
        ("b", 14.75),
        ("c", 15),
        ("a", 15),
    ]
    assert len(wheel._slots) == len(wheel._heap)
    wheel.cancel("a")
    clock.advance(5)
    assert [item for item, _ in fired[7:]] == ["b", "c"]


def test_a_late_tick_skips_the_periodic_beats_it_missed() -> None:
    clock, fired, wheel = periodic()
    wheel.schedule("a", 5)
    clock.advance(16)  # one tick, at 16 s: the beats of 5, 10 and 15 were all due
    assert fired == [("a", 16)]
    clock.advance(3.75)
    assert len(fired) == 1
    clock.advance(0.25)  # 20 s: the cadence counts from the first deadline
    assert fired == [("a", 16), ("a", 20)]


def test_a_periodic_bucket_many_items_left_shrinks_to_the_ones_that_stay() -> None:
    clock, fired, wheel = periodic()
    crowd = [f"s{i}" for i in range(20_000)]  # a mass reconnect: one slot for all
    for item in crowd:
        wheel.schedule(item, 5)
    clock.advance(5)
    for item in crowd[2:]:
        wheel.cancel(item)
    clock.advance(5)  # the two that stay fire, and move on in a bucket of their own size
    (bucket,) = [bucket for bucket in wheel._slots.values() if bucket]
    assert list(bucket) == crowd[:2]
    assert sys.getsizeof(bucket) <= sys.getsizeof(dict.fromkeys(range(8)))
    assert fired[-2:] == [("s0", 10), ("s1", 10)]
