"""`manage.py check --deploy`: the vendor-facing settings that must be shared in service."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.caches, deploy=True)
def rate_limits_shared(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.CACHE_URL:
        return []
    return [
        checks.Warning(
            "CACHE_URL is empty: rate limits and cached vendor keys live in each process's "
            "memory, so every server process counts its own limits.",
            hint="Point CACHE_URL at the Redis every web process shares (docs/operations.md).",
            id="vendors.W001",
        )
    ]
