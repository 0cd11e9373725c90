"""Which status may follow which, declared once beside each status's choices.

A `Transitions` maps a status to the statuses it may move to; staying put is always allowed. The
services decide each move themselves (a conditional update, a lock and a re-check); these tables
say which moves they make, and the PostgreSQL test run refuses any other (tests/status_guard.py).
"""

from collections.abc import Iterable, Mapping


class Transitions(dict[str, frozenset[str]]):
    """{from: {to, ...}}: every move a status field may make."""

    def __init__(self, moves: Mapping[str, Iterable[str]]):
        super().__init__(
            {str(old): frozenset(str(new) for new in news) for old, news in moves.items()}
        )

    def allows(self, old: str, new: str) -> bool:
        return old == new or new in self.get(old, frozenset())
