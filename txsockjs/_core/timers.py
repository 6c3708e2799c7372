"""
A timer wheel: many deadlines, one reactor timer.

Heartbeats and expiry of thousands of sessions must not cost a ``callLater`` per session per
beat. Deadlines are rounded up to a slot of ``resolution`` seconds; one ``IDelayedCall`` waits
for the earliest non-empty slot. Scheduling and cancelling are O(1) (plus a heap push for a
new slot); a tick costs only the entries that are due.

Each slot that holds, or held, an item since it was last due has one bucket and one heap
entry. A bucket emptied by ``cancel`` or a reschedule is kept until its slot comes due, so
that a slot used again costs no heap push; when the buckets outnumber twice the items (plus
a little slack), the empty ones are dropped and the heap is rebuilt. The heap therefore stays
proportional to the live items, whatever the pattern of scheduling and cancelling (after
many cancels, until the next new slot or until the empty ones come due).

A wheel with a ``period`` (the heartbeats) fires each item again every period until it is
cancelled or rescheduled: a due bucket moves whole to its next slot, so a periodic item
costs no reschedule of its own per period.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from twisted.internet.interfaces import IDelayedCall, IReactorTime

T = TypeVar("T")

#: Empty buckets tolerated beyond twice the live items before the heap is rebuilt.
_SLACK = 64


class TimerWheel(Generic[T]):
    """
    Calls ``fire(item)`` once for each scheduled item whose deadline has passed.

    :param clock: the time source, a reactor or a :class:`twisted.internet.task.Clock`.
    :param resolution: slot width in seconds; a deadline fires at most this late.
    :param fire: called with each due item, after it has been unscheduled.
    :param early: round deadlines down to their slot instead of up: an item fires up to
        ``resolution`` early but is never made late by the rounding (heartbeats, where early
        is harmless and late is not).
    :param period: fire each item again every ``period`` seconds (rounded up to whole
        slots, counted from the slot it was due in) until it is cancelled or rescheduled;
        beats a stalled reactor missed are skipped, not fired in a row. Without it an item
        fires once.
    """

    def __init__(
        self,
        clock: IReactorTime,
        resolution: float,
        fire: Callable[[T], None],
        early: bool = False,
        period: float | None = None,
    ):
        self._clock = clock
        self._resolution = resolution
        self._fire = fire
        self._to_slot: Callable[[float], int] = math.floor if early else math.ceil
        self._period_slots = self._slots_in(period) if period else 0
        self._slots: dict[int, dict[T, None]] = {}
        self._slot_of: dict[T, int] = {}
        self._heap: list[int] = []
        self._call: IDelayedCall | None = None
        self._call_slot = 0
        self._firing_item: T | None = None
        self._firing_slot = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, item: object) -> bool:
        return item in self._slot_of

    def schedule(self, item: T, delay: float) -> None:
        """
        Fire ``item`` ``delay`` seconds from now, replacing any earlier schedule of it.

        Called for the item being fired, it counts from the slot the item was due in, so a
        periodic item (a heartbeat) keeps its cadence instead of drifting by the tick's lag.
        """
        if item is self._firing_item:
            slot = self._firing_slot + self._slots_in(delay)
        else:
            slot = self._to_slot(round((self._clock.seconds() + delay) / self._resolution, 9))
        old = self._slot_of.get(item)
        if old == slot:
            return
        if old is not None:
            self._remove(item, old)
        self._slot_of[item] = slot
        bucket = self._slots.get(slot)
        if bucket is not None:
            bucket[item] = None
        else:
            self._slots[slot] = {item: None}
            heapq.heappush(self._heap, slot)
            if len(self._heap) > 2 * len(self._slot_of) + _SLACK:
                self._compact()
        if self._call is None or slot < self._call_slot:
            self._arm(slot)

    def _slots_in(self, delay: float) -> int:
        """``delay`` in whole slots, rounded up."""
        return math.ceil(round(delay / self._resolution, 9))

    def cancel(self, item: T) -> None:
        """Forget ``item``; nothing happens if it is not scheduled."""
        slot = self._slot_of.pop(item, None)
        if slot is None:
            return
        del self._slots[slot][item]
        if not self._slot_of:
            self.stop()

    def stop(self) -> None:
        """Forget every item and cancel the reactor timer."""
        self._slots.clear()
        self._slot_of.clear()
        self._heap.clear()
        if self._call is not None:
            self._call.cancel()
            self._call = None

    def _remove(self, item: T, slot: int) -> None:
        del self._slots[slot][item]

    def _compact(self) -> None:
        """
        Drop the empty buckets and rebuild the heap from the others.

        In place: :meth:`_tick` holds the heap while the items it fires reschedule. Between
        two rebuilds there are more new slots than live items, so the cost is amortised O(1)
        per new slot.
        """
        slots = self._slots
        for slot in [slot for slot, bucket in slots.items() if not bucket]:
            del slots[slot]
        heap = self._heap
        heap[:] = slots
        heapq.heapify(heap)

    def _arm(self, slot: int) -> None:
        if self._call is not None:
            self._call.cancel()
        delay = max(0.0, slot * self._resolution - self._clock.seconds())
        self._call_slot = slot
        self._call = self._clock.callLater(delay, self._tick)

    def _next_period(self, slot: int, now_slot: int) -> int:
        """
        The slot a periodic bucket due at ``slot`` fires in next: a period later, or, after
        a tick later than that (a stalled reactor), the first slot of its cadence still to
        come. The beats missed are not made up in a burst.
        """
        period = self._period_slots
        following = slot + period
        if following <= now_slot:
            following += ((now_slot - following) // period + 1) * period
        return following

    def _refile(self, bucket: dict[T, None], slot: int) -> None:
        """Move a due bucket of a periodic wheel, whole, to ``slot``."""
        self._slot_of.update(dict.fromkeys(bucket, slot))
        there = self._slots.get(slot)
        if there is None:
            self._slots[slot] = bucket
            heapq.heappush(self._heap, slot)
        else:
            there.update(bucket)

    def _tick(self) -> None:
        self._call = None
        now_slot = math.floor(round(self._clock.seconds() / self._resolution, 9))
        heap = self._heap
        while heap and heap[0] <= now_slot:
            slot = heapq.heappop(heap)
            bucket = self._slots.pop(slot, None)
            if not bucket:
                continue
            items: Iterable[T] = bucket
            if self._period_slots:
                # Filed at the next slot before any fires: what they cancel or reschedule
                # while firing leaves it as it would any bucket. A new dict of the live
                # items: one that many left keeps its size (dicts never shrink).
                items = list(bucket)
                self._refile(dict.fromkeys(items), self._next_period(slot, now_slot))
            else:
                for item in bucket:
                    del self._slot_of[item]
            self._firing_slot = slot
            for item in items:
                self._firing_item = item
                self._fire(item)
            self._firing_item = None
        slots = self._slots
        while heap and not slots.get(heap[0]):
            slots.pop(heapq.heappop(heap), None)
        # Items fired above may have re-armed the timer for their next period; slots due
        # before that must not wait for it.
        if heap and (self._call is None or heap[0] < self._call_slot):
            self._arm(heap[0])
