"""The one change feed: every committed write says what it changed — `(table, key)`, with the new value as a
hint when the writer has it — and every in-memory read model (catalog index, record cache, organ rows)
follows the feed instead of being told by each writer. A transaction publishes its changes once, after its
commit and before its other hooks; a rolled-back one publishes nothing. A change without a value (as a
listener on another process's commits would deliver it) makes a subscriber drop what it holds for the key;
the key `RESET` says the whole table may have changed (a listener that was away and missed notifications), so a
subscriber drops everything it holds for that table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from neira.structs import Frozen


class Changed(Frozen):
    """One committed change: the table, the row's key, and (in-process only) the value written."""

    table: str
    key: str
    value: Any = None


RESET = "*"  # the key of a change that may have touched every row of its table
Subscriber = Callable[[list[Changed]], None]


class ChangeFeed:
    """Subscribers per table; `publish` hands each one the changes of its table, in commit order."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def subscribe(self, table: str, fn: Subscriber) -> None:
        """Call `fn(changes)` after every commit that changed `table`."""
        self._subscribers.setdefault(table, []).append(fn)

    def publish(self, changes: list[Changed]) -> None:
        """Deliver one transaction's changes (called by the Database after the commit)."""
        by_table: dict[str, list[Changed]] = {}
        for c in changes:
            by_table.setdefault(c.table, []).append(c)
        for table, items in by_table.items():
            for fn in self._subscribers.get(table, ()):
                fn(items)

    def tables(self) -> list[str]:
        """The tables somebody follows."""
        return list(self._subscribers)

    def reset(self) -> None:
        """Tell every subscriber that anything may have changed (after missed notifications)."""
        self.publish([Changed(table=t, key=RESET) for t in self._subscribers])
