from django.apps import AppConfig


class VendorsConfig(AppConfig):
    name = "vendors"
    verbose_name = "Vendors"

    def ready(self) -> None:
        from vendors import checks, signals  # noqa: F401  (deploy checks, cache invalidation)
