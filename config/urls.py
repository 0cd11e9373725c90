from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from calls.views import VendorPingView
from config.metrics import observe_ping

urlpatterns = [
    path("functions/v1/vendors-ping", observe_ping(VendorPingView.as_view()), name="vendors-ping"),
    path("admin/", admin.site.urls),
    # Vendor docs; /healthz, /readyz and /metrics are answered by config.health's middleware.
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        SpectacularRedocView.as_view(url_name="schema", template_name="docs/redoc.html"),
        name="docs",
    ),
]
