"""The latest-wins slot between viser's callbacks and a render thread."""

from __future__ import annotations

import threading
import time

from splatent_viewer.viewer.slot import LatestSlot


def test_newest_item_wins_and_stale_ones_are_dropped() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for i in range(3):
        slot.put(i)
    assert slot.take(timeout=0) == 2
    assert slot.replaced == 2
    assert slot.take(timeout=0.01) is None  # taken items are gone: no backlog


def test_take_waits_for_a_put_from_another_thread() -> None:
    slot: LatestSlot[str] = LatestSlot()
    threading.Timer(0.05, slot.put, args=("pose",)).start()
    assert slot.take(timeout=10) == "pose"


def test_close_wakes_a_blocked_taker_and_ignores_later_puts() -> None:
    slot: LatestSlot[int] = LatestSlot()
    got: list[int | None] = []
    taker = threading.Thread(target=lambda: got.append(slot.take(timeout=None)))
    taker.start()
    time.sleep(0.05)
    slot.close()
    taker.join(timeout=5)
    assert not taker.is_alive() and got == [None]
    slot.put(1)
    assert slot.closed and slot.take(timeout=0) is None


def test_slow_consumer_sees_increasing_items_and_always_the_last() -> None:
    slot: LatestSlot[int] = LatestSlot()
    seen: list[int] = []
    done = threading.Event()

    def consume() -> None:
        while True:
            item = slot.take(timeout=None)
            if item is None:
                return
            seen.append(item)
            if item == 499:
                done.set()
            time.sleep(0.002)  # slower than the producer

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(500):
        slot.put(i)
    assert done.wait(timeout=10)
    slot.close()
    consumer.join(timeout=5)
    assert seen == sorted(set(seen)) and seen[-1] == 499
    assert len(seen) < 500 and slot.replaced == 500 - len(seen)
