"""A one-item, latest-wins hand-off between the viser callbacks and a client's render thread.

Camera messages arrive faster than frames render; queueing them would build a backlog of stale
poses. A :class:`LatestSlot` holds at most one item: ``put`` replaces whatever was not taken yet.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds the newest unread item; ``take`` waits for one; ``close`` wakes and stops every taker."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self.replaced = 0
        """How many unread items were superseded by a newer ``put`` (dropped stale work)."""

    def put(self, item: T) -> None:
        """Stores ``item``, superseding an unread one. Ignored after :meth:`close`."""
        with self._cond:
            if self._closed:
                return
            if self._has_item:
                self.replaced += 1
            self._item, self._has_item = item, True
            self._cond.notify_all()

    def take(self, *, timeout: float | None = None) -> T | None:
        """The newest item (and clears the slot); ``None`` after ``timeout`` seconds or once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._has_item or self._closed, timeout=timeout)
            if self._closed or not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            return item

    def close(self) -> None:
        """Drops any unread item and wakes every waiting :meth:`take` (which returns ``None``)."""
        with self._cond:
            self._closed = True
            self._item, self._has_item = None, False
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
