"""Agents, transfer numbers and reservations in the staff admin."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch
from django.db.models.functions import Now
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.admin_site import (
    NoCountAdminMixin,
    ReadOnlyAdmin,
    StatesInUseFilter,
    simple_form_response,
)
from config.moments import moment_text, time_of_day
from routing.activity import AgentActivity, agent_activity, natural_order
from routing.models import Agent, AgentLicense, AgentStatusChange, Reservation, TransferNumber
from routing.services import (
    TransferNumbersInvalid,
    agent_set_licenses,
    agent_set_status,
    database_now,
    reservation_release_by_staff,
    transfer_number_set_active,
    transfer_numbers_add,
)
from vendors.forms import StateMultipleChoiceField


class AgentForm(forms.ModelForm):
    licensed_states = StateMultipleChoiceField(help_text="The states the agent may take calls for.")

    class Meta:
        model = Agent
        fields = ["name", "user", "status", "destination", "wrap_up_seconds", "whisper"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["licensed_states"].initial = self.instance.licensed_state_codes


class LicensedStateFilter(StatesInUseFilter):
    """The states agents are licensed for (reservations are made only in those)."""

    def states_in_use(self, request, model_admin):
        return AgentLicense.objects.values_list("state", flat=True).distinct()


class AgentLicenseStateFilter(LicensedStateFilter):
    title = "licensed for"
    parameter_name = "licenses__state"
    field_path = "licenses__state"


class DoingNowFilter(admin.SimpleListFilter):
    """What agents are doing now (routing.activity), not just their stored status."""

    title = "doing now"
    parameter_name = "doing"

    def lookups(self, request, model_admin):
        return AgentActivity.CHOICES

    def queryset(self, request, queryset):
        if self.value() in AgentActivity.LABELS:
            return queryset.filter(activity=self.value())
        return queryset


def activity_badge(activity: str, detail: str = ""):
    """The agent's activity in its colour (the floor uses the same colours)."""
    return format_html(
        '<span class="activity activity-{}" style="color:#fff;background:{};border-radius:3px;'
        'padding:1px 6px;white-space:nowrap">{}</span>{}',
        activity,
        AgentActivity.COLOURS[activity],
        AgentActivity.LABELS[activity],
        format_html(" <small>{}</small>", detail) if detail else "",
    )


# The agent page shows this many of the latest status changes and links to the rest.
STATUS_HISTORY_ON_AGENT_PAGE = 20


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = [
        "name", "now", "status", "licensed_states", "destination_shown", "idle_since",
    ]  # fmt: skip
    list_filter = [DoingNowFilter, "status", AgentLicenseStateFilter]
    search_fields = ["name"]

    @admin.display(description="destination", ordering="destination")
    def destination_shown(self, obj):
        # A SIP address has no space to wrap at: it may break anywhere, so the list fits 1366 px.
        return format_html('<span style="overflow-wrap:anywhere">{}</span>', obj.destination)

    # TX 2 before TX 10.
    ordering = [natural_order("name").asc()]  # type: ignore[list-item]
    fieldsets = [
        (
            None,
            {"fields": ["name", "user", "status", "destination", "wrap_up_seconds", "whisper"]},
        ),
        ("Licensed states", {"fields": ["licensed_states"]}),
        (
            "Right now",
            {"fields": ["idle_since", "held_until", "on_call_since", "last_call_ended_at"]},
        ),
        ("Status history", {"fields": ["status_history"]}),
    ]
    readonly_fields = [
        "idle_since",
        "held_until",
        "on_call_since",
        "last_call_ended_at",
        "status_history",
    ]
    raw_id_fields = ["user"]
    actions = ["set_available", "set_offline"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("licenses", queryset=AgentLicense.objects.order_by("state")))
            .annotate(activity=agent_activity(Now()))
        )

    @admin.display(description="Licensed states")
    def licensed_states(self, obj):
        return ", ".join(license.state for license in obj.licenses.all()) or "none"

    @admin.display(description="Doing now")
    def now(self, obj):
        activity = getattr(obj, "activity", None)
        if activity is None:  # a row not from the change list's query
            return "—"
        if activity == AgentActivity.ON_CALL:
            return activity_badge(activity, f"since {time_of_day(obj.on_call_since)}")
        if activity in (AgentActivity.RESERVED, AgentActivity.WRAP_UP):
            return activity_badge(activity, f"until {time_of_day(obj.held_until)}")
        return activity_badge(activity)

    @admin.display(description="Latest changes")
    def status_history(self, obj):
        if obj.pk is None:
            return "—"
        changes = list(
            obj.status_changes.select_related("changed_by")[:STATUS_HISTORY_ON_AGENT_PAGE]
        )
        if not changes:
            return "No change of status yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    moment_text(change.at),
                    change.get_from_status_display(),
                    change.get_to_status_display(),
                    change.changed_by or "—",
                    change.get_source_display(),
                )
                for change in changes
            ),
        )
        url = reverse("admin:routing_agentstatuschange_changelist")
        return format_html(
            "<table><thead><tr><th>When</th><th>Status</th><th>By</th><th>Through</th></tr>"
            '</thead><tbody>{}</tbody></table><p><a href="{}?agent__id__exact={}">'
            "All status changes of this agent</a></p>",
            rows,
            url,
            obj.pk,
        )

    def get_deleted_objects(self, objs, request):
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # An agent's status history goes with the agent: whoever may delete agents may delete it,
        # though nobody may delete history rows one by one.
        perms_needed.discard(AgentStatusChange._meta.verbose_name)
        return deleted, model_count, perms_needed, protected

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # Only the fields the form shows: the hold and the clocks are a ping's and a call's to
        # write, and the row read for this form may already be behind them.
        obj.save(update_fields=[name for name in AgentForm.Meta.fields if name != "status"])
        if "status" in form.changed_data:
            # Applied by agent_set_status once the form's transaction has committed (see
            # changeform_view): offline releases a live hold, available restarts the idle clock.
            request._agent_status_change = (obj.pk, obj.status)
        return None

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        response = super().changeform_view(request, object_id, form_url, extra_context)
        # After Django's transaction, as the actions do it: the service locks each reservation
        # before the agent, the order a call arriving takes them in, which an agent row still
        # locked by the form's save would reverse.
        if status_change := request.__dict__.pop("_agent_status_change", None):
            agent_id, status = status_change
            self._set_status(request, Agent.objects.filter(pk=agent_id), status)
        return response

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        agent_set_licenses(agent=form.instance, states=form.cleaned_data["licensed_states"])

    def _set_status(self, request, queryset, status):
        now = database_now()
        changed = released = 0
        for agent in queryset:
            before = agent.status
            change = agent_set_status(
                agent_id=agent.pk,
                status=status,
                now=now,
                actor=request.user,
                source=AgentStatusChange.Source.ADMIN,
            )
            released += len(change.released_reservation_ids)
            if before != status or change.released_reservation_ids:
                changed += 1
                note = f"; released reservations {change.released_reservation_ids}"
                self.log_change(
                    request,
                    agent,
                    f"Set {status}" + (note if change.released_reservation_ids else ""),
                )
        extra = f"; {released} live reservation(s) released" if released else ""
        self.message_user(request, f"{changed} agent(s) set {status}{extra}.")

    @admin.action(description="Set the selected agents available", permissions=["change"])
    def set_available(self, request, queryset):
        self._set_status(request, queryset, Agent.Status.AVAILABLE)

    @admin.action(description="Set the selected agents offline", permissions=["change"])
    def set_offline(self, request, queryset):
        self._set_status(request, queryset, Agent.Status.OFFLINE)


@admin.register(AgentStatusChange)
class AgentStatusChangeAdmin(NoCountAdminMixin, ReadOnlyAdmin):
    """Every change of an agent's status, read-only: agent_set_status alone writes them."""

    list_display = ["at", "agent", "from_status", "to_status", "changed_by", "source"]
    list_filter = ["source", "to_status"]
    list_select_related = ["agent", "changed_by"]
    search_fields = ["agent__name", "changed_by__username"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.opts.fields]

    # Whoever may view agents may read their history (no permission of its own to hand out).
    def has_module_permission(self, request):
        return request.user.has_perm("routing.view_agent")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("routing.view_agent")


class TransferNumbersAddForm(forms.Form):
    numbers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "cols": 40}),
        help_text="One number or many: one a line (or separated by commas), in E.164 form, "
        "e.g. +18775703926.",
    )


@admin.register(TransferNumber)
class TransferNumberAdmin(admin.ModelAdmin):
    list_display = ["number", "is_active", "held_now", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["number"]
    readonly_fields = ["number", "held_until", "created_at"]
    fields = ["number", "is_active", "held_until", "created_at"]
    actions = ["deactivate", "activate"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                held_by_reservation=Exists(
                    Reservation.objects.live(Now()).filter(transfer_number=OuterRef("pk"))
                )
            )
        )

    @admin.display(description="Held now", boolean=False)
    def held_now(self, obj):
        if getattr(obj, "held_by_reservation", False):
            return f"held until {time_of_day(obj.held_until)}"
        return "—"

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TransferNumbersAddForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                added = transfer_numbers_add(text=form.cleaned_data["numbers"])
            except TransferNumbersInvalid as refused:
                for problem in refused.problems:
                    form.add_error("numbers", problem)
            else:
                for number in added:
                    self.log_addition(request, number, [{"added": {}}])
                self.message_user(
                    request,
                    f"Added {len(added)} transfer number(s): {', '.join(map(str, added))}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:routing_transfernumber_changelist"))
        return simple_form_response(
            self,
            request,
            form=form,
            title="Add transfer numbers",
            submit_label="Add numbers",
            intro="Paste one number or many. If any is refused, none is added.",
        )

    def _set_active(self, request, queryset, is_active):
        ids = list(queryset.values_list("pk", flat=True))
        changed = transfer_number_set_active(number_ids=ids, is_active=is_active)
        word = "activated" if is_active else "deactivated"
        for number in TransferNumber.objects.filter(pk__in=ids):
            self.log_change(request, number, word.capitalize())
        self.message_user(request, f"{changed} number(s) {word}.")

    @admin.action(description="Deactivate the selected numbers", permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, False)

    @admin.action(description="Activate the selected numbers", permissions=["change"])
    def activate(self, request, queryset):
        self._set_active(request, queryset, True)


class HeldNowFilter(admin.SimpleListFilter):
    """Opens on what is held now; staff can widen it to every reservation."""

    title = "held"
    parameter_name = "held"

    def lookups(self, request, model_admin):
        return [("all", "All reservations")]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Held now",
        }
        yield {
            "selected": self.value() == "all",
            "query_string": changelist.get_query_string({self.parameter_name: "all"}),
            "display": "All reservations",
        }

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        # The database's clock, as the ping's: the release action acts on what this lists.
        return queryset.live(Now())


class ReleaseForm(forms.Form):
    """Staff say why they let a hold go: recorded on the reservation, shown in the call record."""

    reason = forms.CharField(
        max_length=Reservation._meta.get_field("release_reason").max_length,
        strip=True,
        help_text="Required. Recorded with your name on the reservation and its call record.",
        widget=forms.TextInput(attrs={"size": 60, "autofocus": True}),
    )


@admin.register(Reservation)
class ReservationAdmin(NoCountAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "vendor",
        "phone_number",
        "state",
        "agent",
        "transfer_number",
        "status",
        "time_left",
        "created_at",
        "released_by",
        "release_reason",
    ]
    list_filter = [HeldNowFilter, "status", "vendor", LicensedStateFilter]
    list_select_related = ["vendor", "agent", "transfer_number", "released_by"]
    search_fields = ["phone_number", "agent__name", "transfer_number__number"]
    actions = ["release"]

    @admin.display(description="Time left")
    def time_left(self, obj):
        now = timezone.now()
        return f"{obj.seconds_left(now)} s" if obj.is_live(now) else "—"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.opts.fields] + ["time_left"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        ours = [
            path(
                "<int:reservation_id>/release/",
                wrap(self.release_view),
                name="routing_reservation_release",
            )
        ]
        return ours + super().get_urls()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Nothing on the page is editable: no Save buttons, a Release button while it holds.
        context.update(
            show_save=False,
            show_save_and_continue=False,
            show_save_and_add_another=False,
            show_delete=False,
            can_release=obj is not None
            and obj.is_live(database_now())
            and self.has_change_permission(request, obj),
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST":
            # Nothing here is edited: a POST (no Save button sends one) changes nothing.
            return HttpResponseRedirect(request.path)
        return super().change_view(request, object_id, form_url, extra_context)

    def _release(self, request, reservations, reason: str) -> tuple[int, int]:
        now = database_now()
        released = 0
        for reservation in reservations:
            if reservation_release_by_staff(
                reservation_id=reservation.pk, now=now, actor=request.user, reason=reason
            ):
                self.log_change(request, reservation, f"Released early: {reason}")
                released += 1
        return released, len(reservations) - released

    def release_view(self, request, reservation_id: int):
        """One reservation's release page: the reason, then the release."""
        reservation = get_object_or_404(Reservation, pk=reservation_id)
        if not self.has_change_permission(request, reservation):
            raise PermissionDenied
        change_url = reverse("admin:routing_reservation_change", args=[reservation.pk])
        form = ReleaseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            released, _ = self._release(request, [reservation], form.cleaned_data["reason"])
            if released:
                self.message_user(request, "Released the reservation.")
            else:
                self.message_user(request, "It had already ended.", messages.WARNING)
            return HttpResponseRedirect(change_url)
        return self._release_page(request, [reservation], form, single=True)

    def _release_page(self, request, reservations, form, *, single: bool):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Release reservation" if single else "Release reservations",
            "reservations": reservations,
            "form": form,
            "single": single,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/routing/reservation/release_confirmation.html", context
        )

    @admin.action(description="Release the selected reservations now…", permissions=["change"])
    def release(self, request, queryset):
        """Asks for the reason first (required), then releases every selected one still live."""
        reservations = list(queryset)
        form = ReleaseForm(request.POST if "reason" in request.POST else None)
        if not form.is_valid():
            return self._release_page(request, reservations, form, single=False)
        released, skipped = self._release(request, reservations, form.cleaned_data["reason"])
        note = f"; {skipped} had already ended" if skipped else ""
        self.message_user(request, f"Released {released} reservation(s){note}.")
        return None


# The do-not-call list has its own module; importing it here registers its pages.
from routing import admin_do_not_call  # noqa: E402, F401
