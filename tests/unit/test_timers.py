"""The timer wheel: many deadlines on one reactor timer."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from txsockjs._timers import TimerWheel


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
