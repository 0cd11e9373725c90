"""Agents, transfer numbers and reservations in the staff admin."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch
from django.db.models.functions import Now
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from config.admin_site import NoCountAdminMixin, ReadOnlyAdmin
from routing.models import Agent, AgentLicense, AgentStatusChange, Reservation, TransferNumber
from routing.services import (
    TransferNumbersInvalid,
    agent_set_licenses,
    agent_set_status,
    database_now,
    reservation_release,
    transfer_number_set_active,
    transfer_numbers_add,
)
from vendors.forms import StateMultipleChoiceField


class AgentForm(forms.ModelForm):
    licensed_states = StateMultipleChoiceField(help_text="The states the agent may take calls for.")

    class Meta:
        model = Agent
        fields = ["name", "user", "status", "destination", "wrap_up_seconds"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["licensed_states"].initial = self.instance.licensed_state_codes


# The agent page shows this many of the latest status changes and links to the rest.
STATUS_HISTORY_ON_AGENT_PAGE = 20


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = ["name", "status", "licensed_states", "now", "destination", "idle_since"]
    list_filter = ["status", "licenses__state"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "user", "status", "destination", "wrap_up_seconds"]}),
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
            .annotate(
                has_live_reservation=Exists(
                    Reservation.objects.live(Now()).filter(agent=OuterRef("pk"))
                )
            )
        )

    @admin.display(description="Licensed states")
    def licensed_states(self, obj):
        return ", ".join(license.state for license in obj.licenses.all()) or "none"

    @admin.display(description="Now")
    def now(self, obj):
        if obj.on_call_since:
            return f"on a call since {obj.on_call_since:%H:%M:%S}"
        if getattr(obj, "has_live_reservation", False):
            return f"reserved until {obj.held_until:%H:%M:%S}"
        if obj.held_until and obj.held_until > timezone.now():
            return f"wrap-up until {obj.held_until:%H:%M:%S}"
        return "free" if obj.status == Agent.Status.AVAILABLE else "—"

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
                    date_format(timezone.localtime(change.at), "DATETIME_FORMAT"),
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
            return f"held until {obj.held_until:%H:%M:%S}"
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
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add transfer numbers",
            "form": form,
            "submit_label": "Add numbers",
            "intro": "Paste one number or many. If any is refused, none is added.",
        }
        return TemplateResponse(request, "admin/simple_form.html", context)

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
    ]
    list_filter = [HeldNowFilter, "status", "vendor", "state"]
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

    @admin.action(description="Release the selected reservations now", permissions=["change"])
    def release(self, request, queryset):
        now = database_now()
        released = 0
        for reservation in queryset:
            if reservation_release(reservation_id=reservation.pk, now=now, actor=request.user):
                self.log_change(request, reservation, "Released early")
                released += 1
        skipped = queryset.count() - released
        note = f"; {skipped} had already ended" if skipped else ""
        self.message_user(request, f"Released {released} reservation(s){note}.")


# The do-not-call list has its own module; importing it here registers its pages.
from routing import admin_do_not_call  # noqa: E402, F401
