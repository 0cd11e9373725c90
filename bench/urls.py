"""`make bench`'s routes, included by config/urls.py only with BENCH_ENDPOINTS on."""

from django.urls import path

from bench.views import BenchNoopView, BenchOrmPingView, BenchRoundTripsView

urlpatterns = [
    path("functions/v1/bench-noop", BenchNoopView.as_view(), name="bench-noop"),
    path(
        "functions/v1/bench-round-trips",
        BenchRoundTripsView.as_view(),
        name="bench-round-trips",
    ),
    path("functions/v1/bench-orm-ping", BenchOrmPingView.as_view(), name="bench-orm-ping"),
]
