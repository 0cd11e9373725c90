from django.apps import AppConfig


class BenchConfig(AppConfig):
    """`make bench`'s endpoints and commands: installed only with BENCH_ENDPOINTS on."""

    name = "bench"
