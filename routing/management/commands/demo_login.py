"""A staff login for the local demo, with a fresh random password each time it runs."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Create (or reset) the demo superuser and print its password."

    def handle(self, *args, **options):
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin login for this demo: user {DEMO_USERNAME!r}, password {password!r}"
            )
        )
