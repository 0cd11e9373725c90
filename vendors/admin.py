"""Vendors and their keys in the staff admin.

A key is made only through the services, and shown once. The form that makes it answers with a
redirect (POST/redirect/GET), so reloading the page never posts again; the key rides to that one
page in a signed cookie of the browser that asked for it (a minute at most, for that page's path
only), which the page clears as it shows the key. The key is never put in the database, the
session or a message, so a reload, the back button or another browser finds nothing to show.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms import modelformset_factory
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_site import ReadOnlyAdmin, simple_form_response
from config.reveal import reveal_page, reveal_redirect, revealed
from vendors.forms import (
    HolidayForm,
    HolidayFormSet,
    OpeningHoursForm,
    OpeningHoursFormSet,
    OperatorHolidayFormSet,
    OperatorOpeningHoursFormSet,
    StateMultipleChoiceField,
    VendorCapForm,
    VendorCapFormSet,
    policy_window_days_clean,
)
from vendors.models import (
    DuplicateScope,
    Holiday,
    OpeningHours,
    Vendor,
    VendorCap,
    VendorKey,
    VendorKeyEvent,
    vendor_key_digest,
)
from vendors.operator_calendar import FEDERAL_YEARS, operator_holidays_add_federal
from vendors.services import (
    VendorKeyLabelTaken,
    VendorKeyNotRotatable,
    vendor_key_check_rotatable,
    vendor_key_create,
    vendor_key_revoke,
    vendor_key_rotate,
)


class VendorForm(forms.ModelForm):
    authorized_states = StateMultipleChoiceField(
        help_text="The states the vendor may send. Ignored when “All states” is ticked."
    )

    class Meta:
        model = Vendor
        fields = [
            "name",
            "is_active",
            "rate_limit_per_minute",
            "all_states",
            "authorized_states",
            "consent_required",
            "duplicate_window_days",
            "duplicate_scope",
        ]
        labels = {
            "all_states": "All states",
            "duplicate_window_days": "Duplicate window (days)",
        }
        widgets = {"duplicate_scope": forms.RadioSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Matters only with a window: a form posted without it keeps the default.
        if "duplicate_scope" in self.fields:  # not for a login that may only view vendors
            self.fields["duplicate_scope"].required = False

    def clean_duplicate_scope(self):
        return self.cleaned_data.get("duplicate_scope") or DuplicateScope.VENDOR

    def clean_duplicate_window_days(self):
        return policy_window_days_clean(self.cleaned_data.get("duplicate_window_days"))


OperatorHoursFormSet = modelformset_factory(
    OpeningHours,
    form=OpeningHoursForm,
    formset=OperatorOpeningHoursFormSet,
    extra=2,
    can_delete=True,
)
OperatorHolidaysFormSet = modelformset_factory(
    Holiday, form=HolidayForm, formset=OperatorHolidayFormSet, extra=2, can_delete=True
)


class FederalHolidaysForm(forms.Form):
    year = forms.TypedChoiceField(
        coerce=int,
        choices=[(year, year) for year in FEDERAL_YEARS],
        label="US federal holidays of",
    )


class VendorPolicyInline(admin.TabularInline):
    """A vendor's policy rows: edited by whoever may change the vendor, as the vendor's own
    fields are (no permission of their own to hand out), and read by whoever may view it."""

    extra = 0

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("vendors.view_vendor") or self._may_change(request)

    def has_add_permission(self, request, obj=None):
        return self._may_change(request)

    def has_change_permission(self, request, obj=None):
        return self._may_change(request)

    def has_delete_permission(self, request, obj=None):
        return self._may_change(request)

    @staticmethod
    def _may_change(request) -> bool:
        return request.user.has_perm("vendors.change_vendor")


class VendorCapInline(VendorPolicyInline):
    model = VendorCap
    form = VendorCapForm
    formset = VendorCapFormSet
    verbose_name = "cap"
    verbose_name_plural = (
        "Caps: the most live holds and calls at once, reservations per hour and per day "
        "(state empty: all states together; a row per state narrows it)"
    )


class OpeningHoursInline(VendorPolicyInline):
    model = OpeningHours
    form = OpeningHoursForm
    formset = OpeningHoursFormSet
    verbose_name = "opening period"
    verbose_name_plural = (
        "Hours of operation, in the caller's time zone (no rows: the operator's default hours)"
    )


class HolidayInline(VendorPolicyInline):
    model = Holiday
    form = HolidayForm
    formset = HolidayFormSet
    verbose_name = "holiday"
    verbose_name_plural = "Holidays of this vendor (closed all day; the operator's apply too)"


# All shown, none editable.
_KEY_INLINE_FIELDS = (
    "key_link",
    "kind",
    "label",
    "created_at",
    "created_by",
    "last_used_at",
    "revoked_at",
)


@admin.display(description="Kind", ordering="sandbox")
def key_kind(obj):
    """Live or sandbox, the sandbox ones set apart so nobody hands one out as a live key."""
    if obj.sandbox:
        return format_html('<strong class="key-kind-sandbox">{}</strong>', "Sandbox")
    return "Live"


class VendorKeyInline(admin.TabularInline):
    model = VendorKey
    fields = _KEY_INLINE_FIELDS
    readonly_fields = _KEY_INLINE_FIELDS
    extra = 0
    can_delete = False
    show_change_link = False

    kind = staticmethod(key_kind)

    @admin.display(description="Key")
    def key_link(self, obj):
        url = reverse("admin:vendors_vendorkey_change", args=[obj.pk])
        return format_html('<a href="{}">{}…</a>', url, obj.prefix)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Vendor)
class VendorAdmin(admin.ModelAdmin):
    form = VendorForm
    list_display = ["name", "is_active", "states", "policies", "created_at"]
    list_filter = ["is_active", "all_states"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "is_active", "rate_limit_per_minute"]}),
        ("Authorized states", {"fields": ["all_states", "authorized_states"]}),
        (
            "Ping policies",
            {
                "fields": ["consent_required", "duplicate_window_days", "duplicate_scope"],
                "description": (
                    "Caps, hours of operation and holidays are in the tables below; a vendor "
                    "without hours of its own keeps the operator's (Vendors → Operator's default "
                    "hours). A refused ping answers agentAvailable false with its reason and "
                    "holds nothing."
                ),
            },
        ),
    ]
    inlines = [VendorKeyInline, VendorCapInline, OpeningHoursInline, HolidayInline]

    def _add_federal_holidays(self, request):
        form = FederalHolidaysForm(request.POST)
        if form.is_valid():
            year = form.cleaned_data["year"]
            added, listed = operator_holidays_add_federal(year=year)
            for holiday in added:
                self.log_addition(request, holiday, "US federal holiday")
            note = f"; {listed} of its dates were listed already" if listed else ""
            self.message_user(
                request,
                f"Added {len(added)} US federal holiday(s) of {year}{note}.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, "Choose a year from the list.", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:vendors_vendor_operator_hours"))

    @admin.display(description="Authorized states")
    def states(self, obj):
        return ", ".join(obj.authorized_state_list()) or "none"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("caps", "opening_hours", "holidays")

    @admin.display(description="Ping policies")
    def policies(self, obj):
        """The policies at a glance: what may refuse this vendor's pings."""
        parts = []
        if obj.consent_required:
            parts.append("consent required")
        if obj.duplicate_window_days:
            scope = "every vendor" if obj.duplicate_scope == DuplicateScope.ALL_VENDORS else "own"
            parts.append(f"duplicates {obj.duplicate_window_days} d ({scope})")
        caps = obj.caps.all()
        if caps:
            parts.append("caps: " + ", ".join(cap.state or "all states" for cap in caps))
        if obj.opening_hours.all():
            parts.append("own hours")
        if holidays := len(obj.holidays.all()):
            parts.append(f"{holidays} holiday(s)")
        return "; ".join(parts) or "—"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "operator-hours/",
                wrap(self.operator_hours_view),
                name="vendors_vendor_operator_hours",
            ),
            *super().get_urls(),
        ]

    def operator_hours_view(self, request):
        """The operator's default weekly schedule and its holidays, on a page of their own."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        may_change = self.has_change_permission(request)
        if request.method == "POST" and not may_change:
            raise PermissionDenied
        if request.method == "POST" and "_add_federal" in request.POST:
            return self._add_federal_holidays(request)
        data = request.POST if request.method == "POST" else None
        hours = OperatorHoursFormSet(
            data, queryset=OpeningHours.objects.filter(vendor__isnull=True), prefix="hours"
        )
        holidays = OperatorHolidaysFormSet(
            data, queryset=Holiday.objects.filter(vendor__isnull=True), prefix="holidays"
        )
        if data is not None and hours.is_valid() and holidays.is_valid():
            deleting = [
                form.instance
                for form in [*hours.deleted_forms, *holidays.deleted_forms]
                if form.instance.pk
            ]
            with transaction.atomic():
                self.log_deletions(request, deleting)  # before: the rows still have their ids
                saved = [*hours.save(), *holidays.save()]
            for obj in saved:
                self.log_change(request, obj, "Saved in the operator's default hours")
            self.message_user(
                request, "Saved the operator's default hours and holidays.", messages.SUCCESS
            )
            return HttpResponseRedirect(reverse("admin:vendors_vendor_operator_hours"))
        if not may_change:
            for form in [*hours.forms, *holidays.forms]:
                for field in form.fields.values():
                    field.disabled = True
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Operator's default hours and holidays",
            "hours": hours,
            "holidays": holidays,
            "may_change": may_change,
            "federal": FederalHolidaysForm(initial={"year": timezone.now().year + 1}),
        }
        return TemplateResponse(request, "admin/vendors/vendor/operator_hours.html", context)


class RevokeWhenForm(forms.Form):
    """When a key stops working: now, after a grace period, or at a chosen moment."""

    WHEN_CHOICES = [
        ("now", "Now"),
        ("1h", "In 1 hour"),
        ("24h", "In 24 hours"),
        ("7d", "In 7 days"),
        ("at", "At the time below"),
    ]
    DELAYS = {"now": timedelta(0), "1h": timedelta(hours=1), "24h": timedelta(hours=24)}
    DELAYS["7d"] = timedelta(days=7)

    when = forms.ChoiceField(choices=WHEN_CHOICES, initial="now", widget=forms.RadioSelect)
    at = forms.DateTimeField(
        required=False, help_text="UTC, e.g. 2030-01-31 18:00. Only with “At the time below”."
    )

    def __init__(self, *args, now, revoked_at=None, when_label="Revoke", **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now
        self.revoked_at = revoked_at  # a revocation already scheduled, never put off
        self.fields["when"].label = when_label

    def clean(self):
        cleaned = super().clean()
        when = cleaned.get("when")
        if when == "at":
            at = cleaned.get("at")
            if at is None:
                raise forms.ValidationError("Give the time the key stops working.")
            if at <= self.now:
                raise forms.ValidationError("That time has passed: choose “Now” instead.")
            cleaned["revoke_at"] = at
        elif when:
            cleaned["revoke_at"] = self.now + self.DELAYS[when]
        revoke_at = cleaned.get("revoke_at")
        if revoke_at and self.revoked_at and revoke_at > self.revoked_at:
            raise forms.ValidationError(
                f"The key already stops working at {self.revoked_at:%Y-%m-%d %H:%M} UTC: "
                "choose that time or an earlier one."
            )
        return cleaned


class VendorKeyCreateForm(forms.Form):
    vendor = forms.ModelChoiceField(queryset=Vendor.objects.all())
    label = forms.CharField(
        max_length=100,
        required=False,
        help_text="What it is for, e.g. “production”: one active key per label and vendor.",
    )
    sandbox = forms.BooleanField(
        required=False,
        label="Sandbox key",
        help_text=(
            "For the vendor's integration tests: answers every shape of the contract, chosen by "
            "the caller's last four digits (see the vendor guide), and never holds a real agent "
            "or transfer number. Its pings are recorded as sandbox traffic and left out of "
            "reports. Chosen now, for the key's life."
        ),
    )


# The cookie that carries a new key from the form that made it to the page that shows it.
REVEAL_COOKIE = "vendor_key_reveal"


@admin.register(VendorKey)
class VendorKeyAdmin(admin.ModelAdmin):
    list_display = [
        "key_prefix",
        "vendor",
        "kind",
        "label",
        "status",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]
    list_filter = ["vendor", "sandbox"]
    list_select_related = ["vendor", "created_by", "revoked_by"]
    search_fields = ["prefix", "label", "vendor__name"]
    fields = [
        "vendor",
        "key_prefix",
        "kind",
        "label",
        "status",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]
    readonly_fields = [
        "vendor",
        "key_prefix",
        "kind",
        "status",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]
    actions = ["revoke_now"]
    kind = staticmethod(key_kind)

    @admin.display(description="Key", ordering="prefix")
    def key_prefix(self, obj):
        return f"{obj.prefix}…"

    @admin.display(description="Status")
    def status(self, obj):
        now = timezone.now()
        if obj.revoked_at is None:
            return "active"
        if obj.revoked_at > now:
            return f"active, revoked from {obj.revoked_at:%Y-%m-%d %H:%M} UTC"
        return "revoked"

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key's history stays

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/rotate/", wrap(self.rotate_view), name="vendors_vendorkey_rotate"
            ),
            path(
                "<path:object_id>/revoke/", wrap(self.revoke_view), name="vendors_vendorkey_revoke"
            ),
            path(
                "<path:object_id>/reveal/", wrap(self.reveal_view), name="vendors_vendorkey_reveal"
            ),
            *super().get_urls(),
        ]

    def _render_form(self, request, **page):
        return simple_form_response(self, request, **page)

    def _reveal_redirect(self, request, vendor_key, plain_key, *, replaced=None):
        """The answer to the POST that made a key: off to the page that shows it, once."""
        return reveal_redirect(
            request,
            cookie=REVEAL_COOKIE,
            url=reverse("admin:vendors_vendorkey_reveal", args=[vendor_key.pk]),
            object_pk=vendor_key.pk,
            carried={"key": plain_key, "replaced": str(replaced.pk) if replaced else None},
        )

    def _revealed(self, request, vendor_key) -> tuple[str | None, VendorKey | None]:
        """The key the cookie carries, if it is this key's (its digest matches), and the key
        it replaced; (None, None) when there is none."""
        carried = revealed(request, cookie=REVEAL_COOKIE, object_pk=vendor_key.pk) or {}
        plain_key = carried.get("key")
        if not isinstance(plain_key, str) or vendor_key_digest(plain_key) != vendor_key.digest:
            return None, None
        replaced_pk = carried.get("replaced")
        replaced = VendorKey.objects.filter(pk=replaced_pk).first() if replaced_pk else None
        return plain_key, replaced

    def reveal_view(self, request, object_id):
        vendor_key = self.get_object(request, unquote(object_id))
        if vendor_key is None:
            raise Http404("No such key.")
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        plain_key, replaced = self._revealed(request, vendor_key)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "New key" if plain_key else f"Key {vendor_key.prefix}…, already shown",
            "vendor_key": vendor_key,
            "plain_key": plain_key,
            "replaced": replaced,
        }
        response = TemplateResponse(request, "admin/vendors/vendorkey/reveal.html", context)
        url = reverse("admin:vendors_vendorkey_reveal", args=[vendor_key.pk])
        return reveal_page(response, cookie=REVEAL_COOKIE, url=url)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = VendorKeyCreateForm(request.POST)
            if form.is_valid():
                try:
                    vendor_key, plain_key = vendor_key_create(
                        vendor=form.cleaned_data["vendor"],
                        label=form.cleaned_data["label"],
                        actor=request.user,
                        sandbox=form.cleaned_data["sandbox"],
                    )
                except VendorKeyLabelTaken as refusal:
                    form.add_error("label", refusal.message)
                else:
                    self.log_addition(request, vendor_key, [{"added": {}}])
                    return self._reveal_redirect(request, vendor_key, plain_key)
        else:
            form = VendorKeyCreateForm(initial={"vendor": request.GET.get("vendor")})
        return self._render_form(
            request,
            form=form,
            title="Create a vendor key",
            submit_label="Create key",
            intro="The key is shown once, on the next page. Only its first characters are kept.",
        )

    def _key_for_change(self, request, object_id) -> VendorKey:
        # Django's own lookup: an id that is no UUID is not found, as for the change page.
        vendor_key = self.get_object(request, unquote(object_id))
        if vendor_key is None:
            raise Http404("No such key.")
        if not self.has_change_permission(request, vendor_key):
            raise PermissionDenied
        return vendor_key

    def _refuse_if_revoked(self, request, vendor_key):
        if vendor_key.is_usable():
            return None
        refusal = f"Key {vendor_key.prefix}… is already revoked."
        return self._back_to_key(request, vendor_key, refusal)

    def _back_to_key(self, request, vendor_key, refusal: str):
        """Back to the key's page, saying why nothing was done."""
        self.message_user(request, refusal, messages.ERROR)
        return HttpResponseRedirect(reverse("admin:vendors_vendorkey_change", args=[vendor_key.pk]))

    def rotate_view(self, request, object_id):
        vendor_key = self._key_for_change(request, object_id)
        try:
            vendor_key_check_rotatable(vendor_key=vendor_key)
        except VendorKeyNotRotatable as refusal:
            return self._back_to_key(request, vendor_key, refusal.message)
        now = timezone.now()
        form = RevokeWhenForm(
            request.POST or None,
            now=now,
            revoked_at=vendor_key.revoked_at,
            when_label="Revoke the old key",
            initial={"when": "24h"},
        )
        if request.method == "POST" and form.is_valid():
            try:
                new_key, plain_key = vendor_key_rotate(
                    vendor_key=vendor_key,
                    actor=request.user,
                    revoke_old_at=form.cleaned_data["revoke_at"],
                )
            except VendorKeyNotRotatable as refusal:  # another rotation committed meanwhile
                return self._back_to_key(request, vendor_key, refusal.message)
            self.log_addition(request, new_key, f"Rotated from {vendor_key.prefix}…")
            self.log_change(
                request,
                vendor_key,
                f"Rotated to {new_key.prefix}…, revoked from {vendor_key.revoked_at}",
            )
            return self._reveal_redirect(request, new_key, plain_key, replaced=vendor_key)
        return self._render_form(
            request,
            form=form,
            title=(
                f"Rotate {'sandbox ' if vendor_key.sandbox else ''}key {vendor_key.prefix}… "
                f"of {vendor_key.vendor}"
            ),
            submit_label="Rotate key",
            intro="A new key is made at once; the old one keeps working until the time you choose.",
        )

    def revoke_view(self, request, object_id):
        vendor_key = self._key_for_change(request, object_id)
        if refused := self._refuse_if_revoked(request, vendor_key):
            return refused
        form = RevokeWhenForm(
            request.POST or None, now=timezone.now(), revoked_at=vendor_key.revoked_at
        )
        if request.method == "POST" and form.is_valid():
            vendor_key_revoke(
                vendor_key=vendor_key, actor=request.user, at=form.cleaned_data["revoke_at"]
            )
            self.log_change(request, vendor_key, f"Revoked from {vendor_key.revoked_at}")
            self.message_user(
                request, f"Key {vendor_key.prefix}… revoked from {vendor_key.revoked_at}."
            )
            return HttpResponseRedirect(
                reverse("admin:vendors_vendorkey_change", args=[vendor_key.pk])
            )
        return self._render_form(
            request,
            form=form,
            title=f"Revoke key {vendor_key.prefix}… of {vendor_key.vendor}",
            submit_label="Revoke key",
            intro="From the chosen moment the key answers 401.",
        )

    @admin.action(description="Revoke the selected keys now", permissions=["change"])
    def revoke_now(self, request, queryset):
        now = timezone.now()
        revoked = 0
        for vendor_key in queryset.select_related("vendor"):
            if vendor_key.is_usable(now):
                vendor_key_revoke(vendor_key=vendor_key, actor=request.user, at=now)
                self.log_change(request, vendor_key, f"Revoked from {now}")
                revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).")


@admin.register(VendorKeyEvent)
class VendorKeyEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "key", "action", "actor", "detail"]
    list_filter = ["action"]
    list_select_related = ["key__vendor", "actor"]
    search_fields = ["key__prefix", "key__vendor__name"]
