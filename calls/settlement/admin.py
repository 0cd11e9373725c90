"""Settlement in the staff admin: billing rules, and the statement and scorecard pages analysts
read (on the call-record admin, guarded like its funnel)."""

from datetime import UTC, datetime, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, QueryDict
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from calls.exports.forms import CallRecordFilterForm
from calls.settlement.models import BillingRule
from calls.settlement.scorecards import vendor_scorecards
from calls.settlement.statements import (
    PERIODS,
    statement_period,
    vendor_statement,
    vendor_statement_csv,
)
from vendors.models import Vendor


@admin.register(BillingRule)
class BillingRuleAdmin(admin.ModelAdmin):
    """A rule that has settled a call is never edited: the change is a new rule, from a date."""

    list_display = [
        "vendor",
        "effective_from",
        "min_talk_seconds",
        "payout",
        "currency",
        "duplicate_window_days",
        "created_by",
    ]
    list_filter = ["vendor"]
    list_select_related = ["vendor", "created_by"]
    fields = [
        "vendor",
        "effective_from",
        "min_talk_seconds",
        "payout",
        "currency",
        "duplicate_window_days",
        "note",
        "created_by",
        "created_at",
    ]

    def _in_use(self, obj) -> bool:
        return obj is not None and obj.call_records.exists()

    def get_readonly_fields(self, request, obj=None):
        if self._in_use(obj):
            return list(self.fields)
        return ["created_by", "created_at"]

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._in_use(obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        obj.currency = obj.currency.upper()
        super().save_model(request, obj, form, change)


class StatementForm(forms.Form):
    vendor = forms.ModelChoiceField(queryset=Vendor.objects.order_by("name"))
    period = forms.ChoiceField(
        choices=[(period, period.capitalize()) for period in PERIODS] + [("custom", "Custom")],
        initial="month",
    )
    day = forms.DateField(
        required=False,
        help_text="Any day of the period (a day, its week from Monday, its month). UTC.",
    )
    since = CallRecordFilterForm.base_fields["since"]
    until = CallRecordFilterForm.base_fields["until"]

    def clean(self):
        cleaned = super().clean()
        period = cleaned.get("period")
        if period == "custom":
            since, until = cleaned.get("since"), cleaned.get("until")
            if not since or not until:
                raise forms.ValidationError("A custom period needs its start and its end.")
            if since >= until:
                self.add_error("until", "The end of the period must come after its start.")
        elif period:
            day = cleaned.get("day") or timezone.now().astimezone(UTC).date()
            cleaned["since"], cleaned["until"] = statement_period(period=period, day=day)
        return cleaned


class PeriodForm(forms.Form):
    since = CallRecordFilterForm.base_fields["since"]
    until = CallRecordFilterForm.base_fields["until"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("since") and cleaned.get("until") and cleaned["since"] >= cleaned["until"]:
            self.add_error("until", "The end of the period must come after its start.")
        return cleaned


# The scorecard table's columns: (key to sort by, heading, kind).
SCORECARD_COLUMNS = [
    ("vendor", "Vendor", "text"),
    ("pings", "Pings", "count"),
    ("reserved", "Reserved", "count"),
    ("repeats", "Repeats", "count"),
    ("refused", "Refused", "count"),
    ("no_agent", "No agent", "count"),
    ("connected", "Connected", "count"),
    ("completed", "Completed", "count"),
    ("billable", "Billable", "count"),
    ("transfer_rate", "Transfer rate", "rate"),
    ("match_rate", "Match rate", "rate"),
    ("caller_id_mismatch_rate", "Caller-id mismatch", "rate"),
    ("duplicate_rate", "Duplicate rate", "rate"),
    ("average_talk_seconds", "Avg talk (s)", "seconds"),
    ("payout", "Payout", "money"),
]


class SettlementAdminMixin:
    """Statement and scorecard pages for the call-record admin."""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        ours = [
            path("statement/", wrap(self.statement_view), name="calls_callrecord_statement"),
            path("scorecards/", wrap(self.scorecards_view), name="calls_callrecord_scorecards"),
        ]
        return ours + super().get_urls()

    def _context(self, request, title: str) -> dict:
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        return {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": self.model._meta,  # type: ignore[attr-defined]
            "title": title,
        }

    def statement_view(self, request):
        context = self._context(request, "Vendor statement")
        form = StatementForm(request.GET if "vendor" in request.GET else None)
        statement = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            statement = vendor_statement(
                vendor=data["vendor"], since=data["since"], until=data["until"]
            )
            if request.GET.get("format") == "csv":
                name = (
                    f"statement-{data['vendor'].pk}-{data['since']:%Y%m%d}-"
                    f"{data['until'] - timedelta(seconds=1):%Y%m%d}.csv"
                )
                response = HttpResponse(
                    vendor_statement_csv(statement), content_type="text/csv; charset=utf-8"
                )
                response["Content-Disposition"] = f'attachment; filename="{name}"'
                return response
        query = request.GET.copy()
        query["format"] = "csv"
        context.update(
            form=form,
            statement=statement,
            table=statement.table() if statement else [],
            csv_query=query.urlencode(),
        )
        return TemplateResponse(request, "admin/calls/callrecord/statement.html", context)

    def scorecards_view(self, request):
        context = self._context(request, "Vendor scorecards")
        data = request.GET.copy() if "since" in request.GET or "until" in request.GET else None
        if data is None:
            today = timezone.now().astimezone(UTC).date()
            data = QueryDict(mutable=True)
            data["since"] = (today - timedelta(days=29)).isoformat()
            data["until"] = today.isoformat()
        form = PeriodForm(data)
        scorecards = None
        if form.is_valid():
            scorecards = vendor_scorecards(
                since=form.cleaned_data["since"] or datetime(2000, 1, 1, tzinfo=UTC),
                until=form.cleaned_data["until"] or timezone.now() + timedelta(days=1),
            )
        context.update(
            form=form,
            scorecards=scorecards,
            columns=SCORECARD_COLUMNS,
            table=[_cells(row) for row in scorecards.rows] if scorecards else [],
            chart=_chart(scorecards.rows) if scorecards else None,
        )
        return TemplateResponse(request, "admin/calls/callrecord/scorecards.html", context)


def _cells(row) -> dict:
    """One vendor's cells: what is shown, and the value the table sorts by."""
    cells = []
    for key, _, kind in SCORECARD_COLUMNS:
        value = getattr(row, key)
        if kind == "rate":
            shown = "—" if value is None else f"{100 * value:.1f}%"
        elif kind == "seconds":
            shown = "—" if value is None else f"{value:.0f}"
        elif kind == "money":
            shown = row.payout_text
        else:
            shown = str(value)
        if key == "refused" and row.refused_by_reason:
            detail = ", ".join(
                f"{reason} {count}" for reason, count in row.refused_by_reason.items()
            )
            shown = f"{value} ({detail})"
        sort = value if kind == "text" else ("" if value is None else float(value))
        cells.append({"key": key, "shown": shown, "sort": sort, "numeric": kind != "text"})
    return {"vendor": row.vendor, "cells": cells}


def _chart(rows) -> dict:
    """A horizontal bar chart (inline SVG) of each vendor's pings, calls and billable calls."""
    bar_height, gap, label_width, width = 12, 10, 160, 420
    widest = max((row.pings for row in rows), default=0) or 1
    series = [("pings", "#90caf9"), ("connected", "#2e7d32"), ("billable", "#f9a825")]
    groups = []
    for index, row in enumerate(rows):
        top = index * (len(series) * bar_height + gap)
        groups.append(
            {
                "label": row.vendor,
                "label_y": top + bar_height * len(series) / 2 + 4,
                "bars": [
                    {
                        "name": name,
                        "count": getattr(row, name),
                        "y": top + position * bar_height,
                        "width": round(width * getattr(row, name) / widest, 1),
                        "colour": colour,
                    }
                    for position, (name, colour) in enumerate(series)
                ],
            }
        )
    height = max(1, len(rows)) * (len(series) * bar_height + gap)
    return {
        "groups": groups,
        "series": series,
        "label_width": label_width,
        "width": label_width + width + 60,
        "height": height,
        "bar_height": bar_height - 2,
    }
