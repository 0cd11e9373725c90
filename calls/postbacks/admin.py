"""Postback endpoints and their delivery log in the staff admin.

An endpoint's secret is shown once, as the vendor key is (vendors/admin.py): the form that makes
it (or replaces it) answers with a redirect to a page that shows it, carried there in a signed
cookie for that page only, which the page clears; a reload shows it no more.
"""

import hmac

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from calls.postbacks.delivery import postback_deliveries_resend
from calls.postbacks.models import (
    PostbackAttempt,
    PostbackDelivery,
    PostbackEndpoint,
    PostbackEventName,
)
from calls.postbacks.services import (
    PostbackEndpointInvalid,
    postback_endpoint_create,
    postback_endpoint_rotate_secret,
    postback_endpoint_validate,
)
from config.admin_site import NoCountAdminMixin, ReadOnlyAdmin
from config.reveal import reveal_page, reveal_redirect, revealed

REVEAL_COOKIE = "postback_secret_reveal"


class PostbackEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", label="URL")
    events = forms.MultipleChoiceField(
        choices=PostbackEventName.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = PostbackEndpoint
        fields = ["vendor", "url", "events", "description", "is_active"]

    def clean(self):
        cleaned = super().clean()
        url, events = cleaned.get("url"), cleaned.get("events")
        if url and events:
            try:
                postback_endpoint_validate(url=url, events=list(events))
            except PostbackEndpointInvalid as refusal:
                raise forms.ValidationError(refusal.message) from None
        return cleaned


@admin.register(PostbackEndpoint)
class PostbackEndpointAdmin(admin.ModelAdmin):
    form = PostbackEndpointForm
    list_display = ["vendor", "url", "event_list", "is_active", "secret_hint", "created_at"]
    list_filter = ["vendor", "is_active"]
    list_select_related = ["vendor"]
    search_fields = ["url", "vendor__name", "description"]
    readonly_fields = ["secret_hint", "created_at", "created_by", "secret_rotated_at"]

    @admin.display(description="Events")
    def event_list(self, obj):
        return ", ".join(obj.events)

    @admin.display(description="Secret")
    def secret_hint(self, obj):
        return obj.secret_hint

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: the delivery log stays

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/reveal/",
                wrap(self.reveal_view),
                name="postbacks_postbackendpoint_reveal",
            ),
            path(
                "<path:object_id>/rotate-secret/",
                wrap(self.rotate_secret_view),
                name="postbacks_postbackendpoint_rotate_secret",
            ),
            *super().get_urls(),
        ]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        endpoint, secret = postback_endpoint_create(
            vendor=form.cleaned_data["vendor"],
            url=form.cleaned_data["url"],
            events=list(form.cleaned_data["events"]),
            description=form.cleaned_data.get("description", ""),
            actor=request.user,
        )
        obj.pk, obj.secret = endpoint.pk, secret
        obj.created_at = endpoint.created_at
        request._postback_secret = secret  # for response_add, never stored elsewhere

    def response_add(self, request, obj, post_url_continue=None):
        return self._reveal_redirect(request, obj, request._postback_secret)

    def _reveal_redirect(self, request, endpoint, secret):
        return reveal_redirect(
            request,
            cookie=REVEAL_COOKIE,
            url=reverse("admin:postbacks_postbackendpoint_reveal", args=[endpoint.pk]),
            object_pk=endpoint.pk,
            carried={"secret": secret},
        )

    def _revealed(self, request, endpoint) -> str | None:
        secret = (revealed(request, cookie=REVEAL_COOKIE, object_pk=endpoint.pk) or {}).get(
            "secret"
        )
        # Only the endpoint's current secret: one replaced since is not shown.
        if not isinstance(secret, str) or not hmac.compare_digest(secret, endpoint.secret):
            return None
        return secret

    def reveal_view(self, request, object_id):
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None:
            raise Http404("No such endpoint.")
        if not (self.has_add_permission(request) or self.has_change_permission(request, endpoint)):
            raise PermissionDenied
        secret = self._revealed(request, endpoint)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Postback secret" if secret else "Postback secret, already shown",
            "endpoint": endpoint,
            "secret": secret,
        }
        response = TemplateResponse(
            request, "admin/postbacks/postbackendpoint/reveal.html", context
        )
        url = reverse("admin:postbacks_postbackendpoint_reveal", args=[endpoint.pk])
        return reveal_page(response, cookie=REVEAL_COOKIE, url=url)

    def rotate_secret_view(self, request, object_id):
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None:
            raise Http404("No such endpoint.")
        if not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Replace the postback secret",
                "endpoint": endpoint,
            }
            return TemplateResponse(
                request, "admin/postbacks/postbackendpoint/rotate_secret.html", context
            )
        secret = postback_endpoint_rotate_secret(endpoint=endpoint)
        return self._reveal_redirect(request, endpoint, secret)


class PostbackAttemptInline(admin.TabularInline):
    model = PostbackAttempt
    fields = ["attempted_at", "status_code", "error", "duration_ms"]
    readonly_fields = ["attempted_at", "status_code", "error", "duration_ms"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


DELIVERY_FIELDS = (
    "endpoint",
    "call_record",
    "event",
    "status",
    "idempotency_key",
    "created_at",
    "attempts",
    "last_attempt_at",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "give_up_at",
    "delivered_at",
    "body",
)


@admin.register(PostbackDelivery)
class PostbackDeliveryAdmin(NoCountAdminMixin, ReadOnlyAdmin):
    list_display = [
        "created_at",
        "event",
        "endpoint",
        "request_id",
        "status",
        "attempts",
        "last_status_code",
        "last_error_short",
        "next_attempt_at",
    ]
    list_filter = ["status", "event", "endpoint__vendor"]
    list_select_related = ["endpoint__vendor", "call_record"]
    search_fields = ["=call_record__request_id", "=idempotency_key"]
    fields = DELIVERY_FIELDS
    readonly_fields = DELIVERY_FIELDS
    inlines = [PostbackAttemptInline]
    actions = ["resend"]

    @admin.display(description="Request id")
    def request_id(self, obj):
        return obj.call_record.request_id

    @admin.display(description="Last error")
    def last_error_short(self, obj):
        return obj.last_error[:80]

    def has_resend_permission(self, request):
        return request.user.has_perm("postbacks.change_postbackdelivery")

    @admin.action(description="Send again (same body and idempotency key)", permissions=["resend"])
    def resend(self, request, queryset):
        count = postback_deliveries_resend(
            delivery_ids=list(queryset.values_list("pk", flat=True)), now=timezone.now()
        )
        self.message_user(
            request,
            f"{count} postbacks will be sent again within a sweep interval.",
            messages.SUCCESS,
        )
