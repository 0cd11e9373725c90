"""The analysts' pages in the call-record admin: export, export progress, funnel summary.

`CallRecordExportAdminMixin` goes first in the bases of the call-record ModelAdmin; it adds an
"Export" and a "Funnel" button to the change list and its own URLs. The logic is in
`calls.exports` and `calls.exports.reports`; these views only read the form and shape the page.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django import forms
from django.contrib import messages
from django.contrib.admin import widgets as admin_widgets
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.request import QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from calls.exports.forms import SANDBOX_EXCLUDE, CallRecordFilterForm, CallRecordFilters
from calls.exports.jobs import (
    EXPORT_PERMISSION,
    ExportForbidden,
    call_export_start,
    call_export_stream,
)
from calls.exports.reports import REFUSAL_REASONS, call_funnel_csv_rows, call_funnel_summary
from calls.exports.selectors import call_record_filters_describe, call_record_select
from calls.exports.writers import ExportTooLarge
from calls.models import CallExport, CallRecord
from routing.models import UnavailableReason
from vendors.models import Vendor

# What the mixin is mixed into, for the type checker (admin.ModelAdmin is generic only there).
if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    _ModelAdmin = ModelAdmin[CallRecord]
else:
    _ModelAdmin = object

# The change list's own parameters that say nothing about which rows are selected.
_LIST_ONLY_PARAMS = {"o", "p", "all", "e", "_changelist_filters", "_popup", "_to_field"}
# Change-list filter parameters and the export filter each one means.
_FILTER_PARAMS = {
    "q": "q",
    "vendor": "vendor",
    "vendor__exact": "vendor",
    "vendor__id__exact": "vendor",
    "vendor__id__in": "vendor",
    "vendor_id": "vendor",
    "state": "state",
    "state__exact": "state",
    "state__in": "state",
    "outcome": "outcome",
    "outcome__exact": "outcome",
    "outcome__in": "outcome",
    "reason": "reason",
    "reason__exact": "reason",
    "reason__in": "reason",
    "received_at__gte": "since",
    "received_at__date__gte": "since",
    "received_at__lt": "until",
    "received_at__lte": "until",
    "received_at__date__lte": "until",
    "sandbox": "sandbox",
}
_HIERARCHY = ("received_at__year", "received_at__month", "received_at__day")


class ExportForm(CallRecordFilterForm):
    """The export filters with the admin's own widgets: date pickers, vendors and states picked by
    name from lists that filter as one types, outcomes as boxes to tick."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fields = self.fields
        fields["since"].widget = admin_widgets.AdminDateWidget(attrs={"placeholder": "YYYY-MM-DD"})
        fields["since"].label = "Received from"
        fields["until"].widget = admin_widgets.AdminDateWidget(attrs={"placeholder": "YYYY-MM-DD"})
        fields["until"].label = "Received through"
        vendor = fields["vendor"]
        vendor.widget = admin_widgets.FilteredSelectMultiple("vendors", is_stacked=False)
        vendor.widget.choices = vendor.choices
        vendor.label, vendor.help_text = "Vendors", "None chosen: every vendor."
        state = fields["state"]
        state.widget = admin_widgets.FilteredSelectMultiple("states", is_stacked=False)
        state.widget.choices = state.choices
        state.label, state.help_text = "States", "None chosen: every state."
        outcome = fields["outcome"]
        outcome.widget = forms.CheckboxSelectMultiple(choices=outcome.choices)
        outcome.label, outcome.help_text = "Outcomes", "None ticked: every outcome."

    format = forms.ChoiceField(
        choices=[
            (CallExport.Format.CSV, "CSV (streams at once, any size)"),
            (CallExport.Format.XLSX, "Excel XLSX (prepared in the background)"),
            (CallExport.Format.JSONL, "JSON Lines (streams at once, tracking data verbatim)"),
        ],
        initial=CallExport.Format.CSV,
        widget=forms.RadioSelect,
    )


class FunnelForm(forms.Form):
    since = CallRecordFilterForm.base_fields["since"]
    until = CallRecordFilterForm.base_fields["until"]
    vendor = forms.ModelChoiceField(
        queryset=Vendor.objects.order_by("name"), required=False, empty_label="All vendors"
    )
    sandbox = CallRecordFilterForm.base_fields["sandbox"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("since") and cleaned.get("until") and cleaned["since"] >= cleaned["until"]:
            self.add_error("until", "The end of the period must come after its start.")
        return cleaned


def export_data_from_changelist(params: QueryDict) -> tuple[QueryDict, list[str]]:
    """The export form's data for the change list's filters, and the parameters it ignored."""
    data = QueryDict(mutable=True)
    ignored = []
    for key in params:
        if key in _FILTER_PARAMS:
            data.setlist(
                _FILTER_PARAMS[key], data.getlist(_FILTER_PARAMS[key]) + params.getlist(key)
            )
        elif key not in _LIST_ONLY_PARAMS and key not in _HIERARCHY:
            ignored.append(key)
    since, until = _hierarchy_period(params)
    if since and until and "since" not in data:
        data["since"], data["until"] = since.isoformat(), until.isoformat()
    return data, ignored


def _hierarchy_period(params: QueryDict) -> tuple[datetime | None, datetime | None]:
    """The admin's date hierarchy (year, month, day) as a period."""
    try:
        year = int(params.get("received_at__year", ""))  # none: ValueError, no period
        month = int(params.get("received_at__month", 0))
        day = int(params.get("received_at__day", 0))
        if day:
            start = datetime(year, month, day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        if month:
            start = datetime(year, month, 1, tzinfo=UTC)
            return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    except (KeyError, ValueError, OverflowError):
        return None, None


class CallRecordExportAdminMixin(_ModelAdmin):
    """Export (CSV, XLSX, JSON Lines) and funnel pages for the call-record admin."""

    change_list_template = "admin/calls/callrecord/change_list_exports.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        ours = [
            path("export/", wrap(self.export_view), name="calls_callrecord_export"),
            path(
                "export/<int:export_id>/",
                wrap(self.export_progress_view),
                name="calls_callrecord_export_progress",
            ),
            path(
                "export/<int:export_id>/download/",
                wrap(self.export_download_view),
                name="calls_callrecord_export_download",
            ),
            path("funnel/", wrap(self.funnel_view), name="calls_callrecord_funnel"),
        ]
        return ours + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_export": request.user.has_perm(EXPORT_PERMISSION),
            "export_query": request.GET.urlencode(),
        }
        return super().changelist_view(request, extra_context=extra_context)

    # --- Export ---------------------------------------------------------------------------

    def export_view(self, request):
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied
        ignored: list[str] = []
        if request.method == "POST":
            form = ExportForm(request.POST)
        else:
            data, ignored = export_data_from_changelist(request.GET)
            data.setdefault("format", CallExport.Format.CSV)
            form = ExportForm(data)
        matching = None
        if form.is_valid():
            filters = form.filters()
            if request.method == "POST":
                response = self._start_export(request, form, filters)
                if response is not None:
                    return response
            else:
                matching = call_record_select(filters=filters).count()
        listed = self._changelist_count(request) if request.method == "GET" else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Export call records",
            "form": form,
            "matching": matching,
            "listed": listed,
            "ignored": ignored,
            "recent": CallExport.objects.filter(requested_by=request.user)[:10],
        }
        return TemplateResponse(request, "admin/calls/callrecord/export.html", context)

    def _changelist_count(self, request) -> int | None:
        """How many records the change list shows for these parameters, to compare."""
        try:
            return self.get_changelist_instance(request).result_count
        except (IncorrectLookupParameters, SuspiciousOperation):
            return None

    def _start_export(self, request, form, filters):
        export_format = form.cleaned_data["format"]
        try:
            if export_format == CallExport.Format.XLSX:
                export = call_export_start(user=request.user, filters=filters, source="admin")
                return HttpResponseRedirect(
                    reverse("admin:calls_callrecord_export_progress", args=[export.pk])
                )
            stream = call_export_stream(
                user=request.user,
                filters=filters,
                export_format=export_format,
                source="admin",
                bom=export_format == CallExport.Format.CSV,  # Excel reads UTF-8 with a BOM
            )
        except ExportForbidden:
            raise PermissionDenied from None
        except ExportTooLarge as exc:
            form.add_error(None, exc.message)
            return None
        response = StreamingHttpResponse(stream.chunks, content_type=stream.content_type)
        response["Content-Disposition"] = f'attachment; filename="{stream.filename}"'
        response["X-Export-Id"] = str(stream.export.pk)
        return response

    def _own_export(self, request, export_id: int) -> CallExport:
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied
        export = get_object_or_404(CallExport, pk=export_id)
        if export.requested_by_id != request.user.pk and not request.user.is_superuser:
            raise PermissionDenied
        return export

    def export_progress_view(self, request, export_id: int):
        export = self._own_export(request, export_id)
        percent = None
        if export.row_count:
            percent = min(100, round(100 * export.rows_written / export.row_count))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Export #{export.pk}",
            "export": export,
            "filters_described": call_record_filters_describe(
                filters=CallRecordFilters.from_json(export.filters)
            ),
            "percent": percent,
            "working": export.status in (CallExport.Status.PENDING, CallExport.Status.RUNNING),
        }
        return TemplateResponse(request, "admin/calls/callrecord/export_progress.html", context)

    def export_download_view(self, request, export_id: int):
        export = self._own_export(request, export_id)
        if export.status != CallExport.Status.DONE or not export.file:
            messages.warning(request, "This export has no file to download yet.")
            return HttpResponseRedirect(
                reverse("admin:calls_callrecord_export_progress", args=[export.pk])
            )
        try:
            handle = export.file.open("rb")
        except FileNotFoundError:
            raise Http404("The export's file is gone.") from None
        filename = f"call-records-{export.pk}.{export.format}"
        return FileResponse(handle, as_attachment=True, filename=filename)

    # --- Funnel ---------------------------------------------------------------------------

    def funnel_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.now().astimezone(UTC).date()
        data = request.GET.copy()
        if "since" not in data and "until" not in data:
            data["since"] = (today - timedelta(days=6)).isoformat()
            data["until"] = today.isoformat()
        form = FunnelForm(data)
        summary = None
        if form.is_valid():
            vendor = form.cleaned_data.get("vendor")
            summary = call_funnel_summary(
                since=form.cleaned_data["since"] or datetime(2000, 1, 1, tzinfo=UTC),
                until=form.cleaned_data["until"] or timezone.now() + timedelta(days=1),
                vendor_id=vendor.pk if vendor else None,
                sandbox=form.cleaned_data["sandbox"] or SANDBOX_EXCLUDE,
            )
            if request.GET.get("download") == "csv":
                return _funnel_csv_response(summary)
        csv_query = data.copy()
        csv_query["download"] = "csv"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Call funnel",
            "form": form,
            "summary": summary,
            "sections": _funnel_sections(summary) if summary else [],
            "refusals": _refusal_table(summary) if summary else None,
            "legend": FUNNEL_LEGEND,
            "csv_query": csv_query.urlencode(),
        }
        return TemplateResponse(request, "admin/calls/callrecord/funnel.html", context)


# Chart segments: what became of the pings, in funnel order, with their colours.
_SEGMENTS = [
    ("connected", "#2e7d32"),
    ("expired", "#f9a825"),
    ("pending", "#90caf9"),
    ("repeats", "#8e24aa"),
    ("no_agent", "#e65100"),
    ("rejected", "#c62828"),
    ("refused", "#455a64"),
]


def _funnel_sections(summary) -> list[dict]:
    """Per section, its rows with the stacked bar's segments, scaled to the largest row."""
    sections = []
    sections_rows = [("Per day", summary.by_day)]
    sections_rows += [("By vendor", summary.by_vendor), ("By state", summary.by_state)]
    for title, rows in sections_rows:
        widest = max((row.pings for row in rows), default=0) or 1
        sections.append(
            {
                "title": title,
                "heading": {"Per day": "Day", "By vendor": "Vendor"}.get(title, "State"),
                "rows": [
                    {
                        "row": row,
                        "segments": [
                            {
                                "name": name.replace("_", " "),
                                "count": getattr(row, name),
                                "width": 100 * getattr(row, name) / widest,
                                "colour": colour,
                            }
                            for name, colour in _SEGMENTS
                            if getattr(row, name)
                        ],
                    }
                    for row in rows
                ],
            }
        )
    return sections


def _funnel_csv_response(summary) -> HttpResponse:
    """The funnel as a CSV download (per day, vendor and state, and the total)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    since, until = summary.since.date().isoformat(), summary.until.date().isoformat()
    response["Content-Disposition"] = f'attachment; filename="funnel-{since}-{until}.csv"'
    writer = csv.writer(response)
    for row in call_funnel_csv_rows(summary):
        writer.writerow(row)
    return response


def _refusal_table(summary) -> dict:
    """Refused pings per vendor and reason (a column per reason that occurs), and the total."""
    reasons = [reason for reason in REFUSAL_REASONS if summary.total.refused_for(reason)]
    return {
        "reasons": [(reason, UnavailableReason(reason).label) for reason in reasons],
        "rows": [
            {
                "label": row.label,
                "refused": row.refused,
                "counts": [row.refused_for(r) for r in reasons],
            }
            for row in [*summary.by_vendor, summary.total]
            if row.refused
        ],
    }


FUNNEL_LEGEND = [(name.replace("_", " "), colour) for name, colour in _SEGMENTS]
