"""The do-not-call list in the staff admin: add one number or paste many, upload a CSV file,
search, and remove with a reason. The pages only read their forms and call routing.do_not_call;
removal goes through it alone (Django's delete is off), so every one is in the audit.
"""

from datetime import UTC

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from config.admin_site import ReadOnlyAdmin, simple_form_response
from routing.do_not_call import (
    REASON_MOST_CHARACTERS,
    SOURCE_MOST_CHARACTERS,
    UPLOAD_MOST_BYTES,
    DoNotCallAdded,
    DoNotCallInvalid,
    do_not_call_add,
    do_not_call_history,
    do_not_call_match,
    do_not_call_read_csv,
    do_not_call_read_text,
    do_not_call_remove,
)
from routing.models import DoNotCallChange, DoNotCallNumber

# A message lists at most this many numbers, then says how many more.
NUMBERS_IN_A_MESSAGE = 10


class _SourceAndReason(forms.Form):
    source = forms.CharField(
        max_length=SOURCE_MOST_CHARACTERS,
        required=False,
        help_text="Where the numbers came from, e.g. “consumer request by phone”, “state list”.",
    )
    reason = forms.CharField(
        max_length=REASON_MOST_CHARACTERS,
        required=False,
        help_text="Why they are listed.",
    )


class DoNotCallAddForm(_SourceAndReason):
    numbers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "cols": 40}),
        help_text="One number, or many: one a line (or separated by commas). Any US spelling: "
        "(480) 555-0100, 480.555.0100, +14805550100.",
    )
    field_order = ["numbers", "source", "reason"]


class DoNotCallUploadForm(_SourceAndReason):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns number, source, reason (the last two optional; when a line has them "
        "they replace the ones below), with or without a header row. Any bad line refuses the "
        f"whole file. At most {UPLOAD_MOST_BYTES // (1024 * 1024)} MB.",
    )
    field_order = ["file", "source", "reason"]

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > UPLOAD_MOST_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {UPLOAD_MOST_BYTES // (1024 * 1024)} MB: split it."
            )
        return upload


class DoNotCallRemoveForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MOST_CHARACTERS,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Why the numbers come off the list (e.g. “listed by mistake”): kept in the "
        "audit with your name and the time.",
    )


def _some(numbers: list[str]) -> str:
    shown = ", ".join(numbers[:NUMBERS_IN_A_MESSAGE])
    more = len(numbers) - NUMBERS_IN_A_MESSAGE
    return f"{shown} and {more} more" if more > 0 else shown


def added_message(result: DoNotCallAdded) -> str:
    parts = [f"Added {len(result.added)} number(s) to the do-not-call list."]
    if result.already_listed:
        parts.append(
            f"{len(result.already_listed)} already listed, kept as they were: "
            f"{_some(result.already_listed)}."
        )
    for line, number, earlier in result.repeated[:NUMBERS_IN_A_MESSAGE]:
        parts.append(f"Line {line} repeats {number} from line {earlier}.")
    if len(result.repeated) > NUMBERS_IN_A_MESSAGE:
        parts.append(f"{len(result.repeated) - NUMBERS_IN_A_MESSAGE} more repeated lines.")
    return " ".join(parts)


# All shown, none editable.
_NUMBER_FIELDS = ("number", "source", "reason", "added_by", "added_at", "history")


@admin.register(DoNotCallNumber)
class DoNotCallNumberAdmin(admin.ModelAdmin):
    list_display = ["number", "source", "reason", "added_by", "added_at"]
    list_filter = [("added_at", admin.DateFieldListFilter)]
    list_select_related = ["added_by"]
    search_fields = ["number"]  # shows the box; get_search_results does the matching
    search_help_text = "A number in any spelling (exact), or words of a source or reason."
    show_full_result_count = False
    fields = _NUMBER_FIELDS
    readonly_fields = _NUMBER_FIELDS
    actions = ["remove_numbers"]
    change_list_template = "admin/routing/donotcallnumber/change_list.html"
    change_form_template = "admin/routing/donotcallnumber/change_form.html"

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(do_not_call_match(term=search_term)), False

    @admin.display(description="History")
    def history(self, obj):
        rows = do_not_call_history(number=obj.number)[:20]
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} {} UTC by {}: {} ({})</li>",
                (
                    (
                        row.action,
                        f"{row.at.astimezone(UTC):%Y-%m-%d %H:%M}",
                        row.actor or "—",
                        row.reason or "no reason given",
                        row.detail or "—",
                    )
                    for row in rows
                ),
            ),
        )

    # Listed numbers are not edited (the audit records additions and removals) and never
    # deleted by Django: removal is its own page, with a reason.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_remove_permission(self, request, obj=None):
        return request.user.has_perm("routing.delete_donotcallnumber")

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("upload/", wrap(self.upload_view), name="routing_donotcallnumber_upload"),
            path(
                "<path:object_id>/remove/",
                wrap(self.remove_view),
                name="routing_donotcallnumber_remove",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "may_add": self.has_add_permission(request),
            "may_read_history": request.user.has_perm("routing.view_donotcallchange"),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "may_remove": self.has_remove_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _render_form(self, request, **page):
        return simple_form_response(self, request, **page)

    def _added(self, request, result: DoNotCallAdded):
        self.message_user(request, added_message(result), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:routing_donotcallnumber_changelist"))

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DoNotCallAddForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entries = do_not_call_read_text(text=form.cleaned_data["numbers"])
                result = do_not_call_add(
                    entries=entries,
                    source=form.cleaned_data["source"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    detail="one number" if len(entries) == 1 else "pasted",
                )
            except DoNotCallInvalid as refused:
                for problem in refused.problems:
                    form.add_error("numbers", problem)
            else:
                return self._added(request, result)
        return self._render_form(
            request,
            form=form,
            title="Add numbers to the do-not-call list",
            submit_label="Add to the list",
            intro="Listed callers are refused for every vendor before anything is held. "
            "If any number is not a US number, none is added.",
        )

    def upload_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DoNotCallUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                entries = do_not_call_read_csv(data=upload.read())
                result = do_not_call_add(
                    entries=entries,
                    source=form.cleaned_data["source"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    detail=f"file {upload.name}",
                )
            except DoNotCallInvalid as refused:
                form.add_error(None, f"Nothing was added from {upload.name}:")
                for problem in refused.problems:
                    form.add_error("file", problem)
            else:
                return self._added(request, result)
        return self._render_form(
            request,
            form=form,
            title="Upload numbers to the do-not-call list",
            submit_label="Upload",
            intro="All or nothing: any bad line refuses the whole file, each bad line named. "
            "Numbers already listed, or given twice, are kept once as they are.",
        )

    def remove_view(self, request, object_id):
        row = self.get_object(request, unquote(object_id))
        if row is None:
            raise Http404("No such number on the list.")
        if not self.has_remove_permission(request):
            raise PermissionDenied
        form = DoNotCallRemoveForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            return self._remove(request, [row.pk], form.cleaned_data["reason"])
        return self._render_form(
            request,
            form=form,
            title=f"Remove {row.number} from the do-not-call list",
            submit_label="Remove from the list",
            intro=f"Listed {row.added_at:%Y-%m-%d} by {row.added_by or '—'}"
            + (f", source “{row.source}”" if row.source else "")
            + (f", reason “{row.reason}”." if row.reason else "."),
        )

    def _remove(self, request, number_ids, reason):
        try:
            removed = do_not_call_remove(number_ids=number_ids, reason=reason, actor=request.user)
        except DoNotCallInvalid as refused:
            self.message_user(request, refused.message, messages.ERROR)
        else:
            self.message_user(
                request,
                f"Removed {len(removed)} number(s) from the do-not-call list: {_some(removed)}.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:routing_donotcallnumber_changelist"))

    @admin.action(description="Remove the selected numbers from the list", permissions=["remove"])
    def remove_numbers(self, request, queryset):
        # Django's pattern for an action that asks first (as its delete does): the page posts
        # back to the change list with the same selection and the reason.
        form = DoNotCallRemoveForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            return self._remove(
                request, list(queryset.values_list("pk", flat=True)), form.cleaned_data["reason"]
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Remove numbers from the do-not-call list",
            "form": form,
            "numbers": list(queryset.values_list("number", flat=True)[:100]),
            "count": queryset.count(),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action": "remove_numbers",
        }
        return TemplateResponse(request, "admin/routing/donotcallnumber/remove.html", context)


@admin.register(DoNotCallChange)
class DoNotCallChangeAdmin(ReadOnlyAdmin):
    """The do-not-call list's audit: every addition and removal, who, when and why."""

    list_display = ["at", "number", "action", "actor", "source", "reason", "detail"]
    list_filter = ["action", ("at", admin.DateFieldListFilter)]
    list_select_related = ["actor"]
    search_fields = ["number"]
    search_help_text = "A number in any spelling (exact), or words of a source or reason."
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(do_not_call_match(term=search_term)), False
