"""Agent presence: the agent page (a screen pop) and the JSON API dialers use."""

import contextlib

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework import serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from calls.telephony.service import agent_screen_pop
from config.errors import FirstRendererNegotiation, envelope_data, request_id_of
from routing.models import Agent, AgentStatusChange
from routing.services import InvalidAgentStatus, agent_set_status, database_now

# The page refreshes itself this often, so a reservation pops up without a click.
REFRESH_SECONDS = 3


def _agent_of(user) -> Agent | None:
    return Agent.objects.filter(user=user).first() if user.is_authenticated else None


@login_required
def agent_home(request):
    """GET /agent/: the agent's status, buttons, and the call they are reserved for or on."""
    agent = _agent_of(request.user)
    if agent is None:
        return render(request, "agent/not_an_agent.html", status=403)
    now = timezone.now()
    context = {
        "agent": agent,
        "pop": agent_screen_pop(agent=agent, now=now),
        "refresh_seconds": REFRESH_SECONDS,
        "states": agent.licensed_state_codes,
    }
    return render(request, "agent/home.html", context)


@login_required
@require_POST
def agent_status_form(request):
    """POST /agent/status: the page's available/offline buttons."""
    agent = _agent_of(request.user)
    if agent is None:
        return render(request, "agent/not_an_agent.html", status=403)
    # A tampered form changes nothing; the page then shows the status as it is.
    with contextlib.suppress(InvalidAgentStatus):
        agent_set_status(
            agent_id=agent.pk,
            status=request.POST.get("status"),
            now=database_now(),
            actor=request.user,
            source=AgentStatusChange.Source.PAGE,
        )
    return redirect("agent-home")


class StatusInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Agent.Status.choices)


class AgentStatusView(APIView):
    """POST /api/v1/agents/<id>/status {"status": "available"|"offline"}, token auth.

    The token's user must be that agent's login, a superuser, or allowed to change agents
    (Operations). A staff flag alone is not enough: Analysts' tokens feed BI tools.
    """

    http_method_names = ["post"]
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]
    content_negotiation_class = FirstRendererNegotiation

    def post(self, request, agent_id: int):
        user = request.user
        agent = Agent.objects.filter(pk=agent_id).first()
        own = agent is not None and agent.user_id == user.pk
        # Checked before the agent's existence, so those who may not act cannot probe for ids.
        if not (own or user.has_perm("routing.change_agent")):
            raise PermissionDenied("This token may not change that agent's status.")
        if agent is None:
            raise NotFound("Agent not found.")
        data = StatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        change = agent_set_status(
            agent_id=agent.pk,
            status=data.validated_data["status"],
            now=database_now(),
            actor=user,
            source=AgentStatusChange.Source.API,
        )
        return Response(
            envelope_data(
                200,
                {
                    "agentId": change.agent.pk,
                    "status": change.agent.status,
                    "releasedReservations": len(change.released_reservation_ids),
                    "requestId": request_id_of(request),
                },
            )
        )
