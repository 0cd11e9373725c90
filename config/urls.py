from django.conf import settings
from django.contrib import admin
from django.urls import path

from calls.views import BenchNoopView, VendorPingView

urlpatterns = [
    path("functions/v1/vendors-ping", VendorPingView.as_view(), name="vendors-ping"),
    path("admin/", admin.site.urls),
]

if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("functions/v1/bench-noop", BenchNoopView.as_view(), name="bench-noop"))
