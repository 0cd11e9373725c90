"""What an agent is doing now, computed from the rows that hold it, not the stored status alone.

One rule for the floor, the agent admin's colours and its filter: on a call (whatever the status
says: an agent who went offline mid-call is still talking), else offline, else reserved (a live
hold), else in wrap-up (held after a call with no live hold), else free. `free` here is
`routing.allocation.agent_is_free`: the agents a ping can reserve.
"""

import re

from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.db.models.fields import CharField
from django.db.models.functions import Collate

from routing.models import Agent, Reservation


class AgentActivity:
    ON_CALL = "on_call"
    RESERVED = "reserved"
    WRAP_UP = "wrap_up"
    FREE = "free"
    OFFLINE = "offline"

    # In the order the floor shows them; labels and the admin's colours.
    CHOICES = [
        (FREE, "free"),
        (RESERVED, "reserved"),
        (ON_CALL, "on a call"),
        (WRAP_UP, "in wrap-up"),
        (OFFLINE, "offline"),
    ]
    COLOURS = {
        FREE: "#2e7d32",
        RESERVED: "#1565c0",
        ON_CALL: "#6a1b9a",
        WRAP_UP: "#ef6c00",
        OFFLINE: "#616161",
    }
    LABELS = dict(CHOICES)


def agent_activity(now) -> Case:
    """The activity of each agent at `now` (a moment, or Now() for the database's clock), as an
    expression to annotate agents with."""
    live_hold = Exists(Reservation.objects.live(now).filter(agent=OuterRef("pk")))
    return Case(
        When(on_call_since__isnull=False, then=Value(AgentActivity.ON_CALL)),
        When(status=Agent.Status.OFFLINE, then=Value(AgentActivity.OFFLINE)),
        When(live_hold, then=Value(AgentActivity.RESERVED)),
        When(held_until__gt=now, then=Value(AgentActivity.WRAP_UP)),
        default=Value(AgentActivity.FREE),
        output_field=CharField(),
    )


def agents_doing(activity: str, now) -> Q:
    """Agents whose activity at `now` is `activity` (for a filter)."""
    doing = Agent.objects.annotate(activity=agent_activity(now)).filter(activity=activity)
    return Q(pk__in=doing.values("pk"))


# --- Natural order of names ----------------------------------------------------------------------
# "TX 2" before "TX 10": PostgreSQL's ICU collation with numeric ordering (made by a migration),
# and the same rule registered on each SQLite connection (routing.apps).
NATURAL_COLLATION = "natural_sort"


def natural_key(text: str) -> tuple:
    """Digits compared as numbers, the rest without case: the Python form of the collation."""
    return tuple(
        (1, int(part), "") if part.isdigit() else (0, 0, part.casefold())
        for part in re.split(r"(\d+)", text)
        if part
    )


def natural_compare(left: str, right: str) -> int:
    """The SQLite collation: -1, 0 or 1 as `natural_key` orders the two."""
    a, b = natural_key(left), natural_key(right)
    return (a > b) - (a < b)


def natural_order(field: str) -> Collate:
    return Collate(field, NATURAL_COLLATION)
