"""The floor's pages in the staff admin: the home page, its live part (polled by htmx) and the
charts' data. Every staff role sees the floor; what a role may do from it (release holds, change
agents) follows its permissions."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from calls.floor.selectors import (
    chart_pings_per_hour,
    chart_transfer_rate_per_day,
    floor_agent_counts,
    floor_calls_now,
    floor_live_holds,
    floor_recent_pings,
    floor_transfer_rate_today,
    floor_vendors_near_caps,
)
from calls.models import CallRecord
from config.errors import envelope_json_response
from config.moments import time_of_day
from routing.activity import AgentActivity
from routing.services import database_now
from vendors.models import Vendor

# Outcomes in the charts' colours (the funnel's, where it has one).
OUTCOME_COLOURS: dict[str, str] = {
    CallRecord.Outcome.RESERVED: "#90caf9",
    CallRecord.Outcome.CONNECTED: "#43a047",
    CallRecord.Outcome.COMPLETED: "#2e7d32",
    CallRecord.Outcome.EXPIRED: "#f9a825",
    CallRecord.Outcome.REPEAT: "#8e24aa",
    CallRecord.Outcome.NO_AGENT: "#e65100",
    CallRecord.Outcome.REJECTED: "#c62828",
}


def outcome_label(outcome: str) -> str:
    """One way of naming outcomes across the admin: their labels, in lower case."""
    return str(dict(CallRecord.Outcome.choices).get(outcome, outcome.replace("_", " ")))


def _refresh_seconds() -> int:
    return settings.FLOOR_REFRESH_SECONDS


def floor_live_context(request) -> dict:
    now = database_now()
    total, by_state = floor_agent_counts(now=now)
    holds_count, holds = floor_live_holds(now=now)
    today = floor_transfer_rate_today(now=now)
    user = request.user
    return {
        "now": now,
        "updated": time_of_day(now),
        "activities": AgentActivity.CHOICES,
        "agent_tiles": [
            {
                "code": code,
                "label": label,
                "count": total.counts[code],
                "colour": AgentActivity.COLOURS[code],
            }
            for code, label in AgentActivity.CHOICES
        ],
        "total": total,
        "by_state": by_state,
        "holds_count": holds_count,
        "holds": holds,
        "calls": floor_calls_now(now=now),
        "recent_pings": [
            {
                "outcome": outcome,
                "label": outcome_label(outcome),
                "count": count,
                "colour": OUTCOME_COLOURS.get(outcome, "#757575"),
            }
            for outcome, count in floor_recent_pings(now=now).items()
        ],
        "today": today,
        "today_percent": None if today.rate is None else round(100 * today.rate, 1),
        "near_caps": floor_vendors_near_caps(now=now),
        "can_release": user.has_perm("routing.change_reservation"),
        "can_see_agents": user.has_perm("routing.view_agent"),
        "refresh_seconds": _refresh_seconds(),
        "live_url": reverse("admin:floor_live"),
    }


def floor_view(request, site, extra_context=None):
    """The admin's home: the floor, then the usual list of what the login may open."""
    app_list = site.get_app_list(request)
    context = {
        **site.each_context(request),
        "title": "Operations floor",
        "subtitle": None,
        "app_list": app_list,
        **floor_live_context(request),
        "chart_vendors": Vendor.objects.order_by("name").values_list("pk", "name"),
        "pings_chart_url": reverse("admin:floor_chart", args=["pings-per-hour"]),
        "rate_chart_url": reverse("admin:floor_chart", args=["transfer-rate-per-day"]),
        **(extra_context or {}),
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/floor.html", context)


def floor_live_partial(request):
    return TemplateResponse(request, "admin/floor_live.html", floor_live_context(request))


def _live_for_htmx(site):
    """The live part behind the admin's login. When htmx polls after the login has ended, it is
    told to reload the page (which then shows the login form) instead of being redirected: it
    would swap the login page into the floor."""
    protected = site.admin_view(floor_live_partial)

    def view(request):
        if request.headers.get("HX-Request") == "true" and not site.has_permission(request):
            return HttpResponse(status=204, headers={"HX-Refresh": "true"})
        return protected(request)

    return view


def floor_chart(request, name: str):
    """A chart's data as JSON: `?vendor=<id>` for one vendor, none for all."""
    vendor_id = None
    raw = request.GET.get("vendor", "").strip()
    if raw:
        if not raw.isdigit() or not Vendor.objects.filter(pk=int(raw)).exists():
            return envelope_json_response(request, 400, "No such vendor.")
        vendor_id = int(raw)
    now = database_now()
    if name == "pings-per-hour":
        hourly = chart_pings_per_hour(now=now, vendor_id=vendor_id)
        return JsonResponse(
            {
                "labels": [time_of_day(hour)[:5] for hour in hourly.hours],
                "datasets": [
                    {
                        "label": outcome_label(outcome),
                        "data": counts,
                        "backgroundColor": OUTCOME_COLOURS.get(outcome, "#757575"),
                    }
                    for outcome, counts in hourly.by_outcome.items()
                ],
            }
        )
    if name == "transfer-rate-per-day":
        daily = chart_transfer_rate_per_day(now=now, vendor_id=vendor_id)
        return JsonResponse(
            {
                "labels": [day.isoformat() for day in daily.days],
                "datasets": [
                    {"label": "transfer rate (%)", "data": daily.rates, "borderColor": "#2e7d32"},
                ],
                "reserved": daily.reserved,
                "connected": daily.connected,
            }
        )
    return envelope_json_response(request, 404, "No such chart.")


def floor_urls(site) -> list:
    wrap = site.admin_view
    return [
        path("floor/live/", _live_for_htmx(site), name="floor_live"),
        path("floor/charts/<slug:name>.json", wrap(floor_chart), name="floor_chart"),
    ]
