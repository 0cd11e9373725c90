"""The queue: transferred callers no agent could take wait here for the first one who is free.

A caller joins for their call's state and waits until an agent licensed for it is free (longest
waiting caller first, and for them the longest idle agent), until they hang up, or until their
longest wait is over (then the call goes to overflow, or the message).

A waiting caller has the first call on every agent licensed for their state, however the agent
comes free:
- a callback or a person frees them (a call ends, a hold is released, they come available): the
  service that frees them offers them to the queue in its own transaction, with their row still
  locked, so no ping can see them free in between (`waiting_callers_offer(agent_ids=...)`);
- time frees them (a wrap-up or an unused hold runs out): nothing happens at that moment, so the
  allocation does not count an idle agent as free while a caller waits in a state they are
  licensed for (routing.allocation.agent_is_free), and beat's sweep offers them within a second.

Giving an agent to a caller puts the agent on the call at once (as an answered transfer does),
and tells whoever listens, once committed, through `caller_assigned`: the telephony takes the
call out of the carrier's queue to that agent. Routing knows callers only by their call's id.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.dispatch import Signal

from routing.allocation import agent_is_idle
from routing.models import Agent, AgentLicense, WaitingCaller

# Sent once an assignment is committed, with `call_sid` and `agent_id`.
caller_assigned = Signal()


@dataclass(frozen=True)
class Assignment:
    call_sid: str
    agent_id: int


def waiting_caller_join(
    *, call_sid: str, state: str, now: datetime, max_wait_seconds: int
) -> WaitingCaller | None:
    """Put the caller in the queue, or back in their old place; None when their longest wait is
    over. Call inside transaction.atomic().

    A caller given an agent who was not to be had after all (the phone rang out) waits again
    from when they first joined, so they keep their place and their longest wait.
    """
    caller = WaitingCaller.objects.select_for_update().filter(call_sid=call_sid).first()
    if caller is None:
        return WaitingCaller.objects.create(
            call_sid=call_sid,
            state=state,
            queued_at=now,
            wait_until=now + timedelta(seconds=max_wait_seconds),
        )
    if caller.wait_until <= now:
        return None
    if caller.status != WaitingCaller.Status.WAITING:
        caller.status = WaitingCaller.Status.WAITING
        caller.agent = None
        caller.assigned_at = None
        caller.ended_at = None
        caller.save(update_fields=["status", "agent", "assigned_at", "ended_at"])
    return caller


def waiting_caller_leave(*, call_sid: str, now: datetime) -> WaitingCaller | None:
    """The caller is out of the queue for good (hung up, waited too long, or their call is
    over). Returns the row as it was left (its agent, if one was assigned), or None."""
    caller = WaitingCaller.objects.select_for_update().filter(call_sid=call_sid).first()
    if caller is None:
        return None
    if caller.status != WaitingCaller.Status.ENDED:
        caller.status = WaitingCaller.Status.ENDED
        caller.ended_at = now
        caller.save(update_fields=["status", "ended_at"])
    return caller


def waiting_caller_of(*, call_sid: str) -> WaitingCaller | None:
    return WaitingCaller.objects.filter(call_sid=call_sid).first()


def waiting_callers_offer(
    *, now: datetime, agent_ids: list[int] | None = None, states: list[str] | None = None
) -> list[Assignment]:
    """Give idle agents to waiting callers, longest waiting caller first, each the longest idle
    agent licensed for their state. Call inside transaction.atomic().

    `agent_ids`: only these agents, who have just come free (their rows may be locked by the
    caller's transaction already). `states`: only callers waiting in these. Callers and agents
    that another transaction has locked are skipped, never waited for: that one is changing
    them (a hang-up, a ping), and locks are never taken in an order that could deadlock.
    """
    if agent_ids is not None and not agent_ids:
        return []
    waiting = WaitingCaller.objects.waiting(now)
    if states is not None:
        waiting = waiting.filter(state__in=states)
    if agent_ids is not None:
        waiting = waiting.filter(state__in=_licensed_states(agent_ids))
    callers = list(
        waiting.order_by("queued_at", "id").select_for_update(skip_locked=True, no_key=True)
    )
    assignments: list[Assignment] = []
    no_agent_in: set[str] = set()
    for caller in callers:
        if caller.state in no_agent_in:
            continue
        agents = Agent.objects.filter(agent_is_idle(now)).licensed_for(caller.state)
        if agent_ids is not None:
            agents = agents.filter(pk__in=agent_ids)
        agent = (
            agents.order_by("idle_since", "id")
            .select_for_update(skip_locked=True, of=("self",), no_key=True)
            .first()
        )
        if agent is None:
            no_agent_in.add(caller.state)
            continue
        Agent.objects.filter(pk=agent.pk).update(on_call_since=now, held_until=None)
        caller.status = WaitingCaller.Status.ASSIGNED
        caller.agent = agent
        caller.assigned_at = now
        caller.save(update_fields=["status", "agent", "assigned_at"])
        assignment = Assignment(call_sid=caller.call_sid, agent_id=agent.pk)
        assignments.append(assignment)
        transaction.on_commit(
            partial(
                caller_assigned.send_robust,
                sender=WaitingCaller,
                call_sid=assignment.call_sid,
                agent_id=assignment.agent_id,
            )
        )
        if agent_ids is not None and len(assignments) == len(agent_ids):
            break
    return assignments


def _licensed_states(agent_ids: list[int]):
    return AgentLicense.objects.filter(agent_id__in=agent_ids).values("state")
