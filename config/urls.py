from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from calls.exports.api import CallRecordListView
from calls.ping.views import VendorPingView
from calls.telephony import agent_views
from calls.telephony import views as telephony_views
from calls.vendor_api.views import VendorCallsView
from config.metrics import observe_ping

urlpatterns = [
    path("functions/v1/vendors-ping", observe_ping(VendorPingView.as_view()), name="vendors-ping"),
    path(settings.ADMIN_URL, admin.site.urls),
    # Telephony: the carrier's webhooks, and agent presence.
    path("telephony/voice", telephony_views.voice, name="telephony-voice"),
    path("telephony/dial-status", telephony_views.dial_status, name="telephony-dial-status"),
    path("telephony/status", telephony_views.status, name="telephony-status"),
    path("telephony/queue/wait", telephony_views.queue_wait, name="telephony-queue-wait"),
    path("telephony/queue/leave", telephony_views.queue_leave, name="telephony-queue-leave"),
    path("telephony/whisper", telephony_views.whisper, name="telephony-whisper"),
    path("agent/", agent_views.agent_home, name="agent-home"),
    path("agent/status", agent_views.agent_status_form, name="agent-status"),
    path(
        "agent/login/",
        auth_views.LoginView.as_view(template_name="agent/login.html"),
        name="agent-login",
    ),
    path("agent/logout/", auth_views.LogoutView.as_view(), name="agent-logout"),
    path(
        "api/v1/agents/<int:agent_id>/status",
        agent_views.AgentStatusView.as_view(),
        name="agent-status-api",
    ),
    path("api/v1/call-records", CallRecordListView.as_view(), name="call-records"),
    path("api/v1/vendor/calls", VendorCallsView.as_view(), name="vendor-calls"),
    # Vendor docs; /healthz, /readyz and /metrics are answered by config.health's middleware.
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        SpectacularRedocView.as_view(url_name="schema", template_name="docs/redoc.html"),
        name="docs",
    ),
]

if settings.BENCH_ENDPOINTS:
    urlpatterns += [path("", include("bench.urls"))]
