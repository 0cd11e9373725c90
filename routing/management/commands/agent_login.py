"""A login and an API token for one agent: the agent page and dialers. New password each run."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from routing.models import Agent


class Command(BaseCommand):
    help = "Create (or reset) the login of an agent and print its password and API token."

    def add_arguments(self, parser):
        parser.add_argument("agent", help="The agent's name, e.g. 'Demo Agent AZ 1', or its id.")
        parser.add_argument("--username", help="Defaults to the agent's name in lower-case-dashes.")

    def handle(self, *args, agent, username=None, **options):
        found = Agent.objects.filter(name=agent).first()
        if found is None and agent.isascii() and agent.isdigit():
            found = Agent.objects.filter(pk=int(agent)).first()
        if found is None:
            raise CommandError(f"No agent named {agent!r}.")
        user = (
            found.user
            or get_user_model().objects.get_or_create(
                username=username or "-".join(found.name.lower().split())
            )[0]
        )
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save()
        if found.user_id != user.pk:
            found.user = user
            found.save(update_fields=["user"])
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(
            self.style.SUCCESS(
                f"Agent {found.name!r} (id {found.pk}): user {user.username!r}, "
                f"password {password!r}, API token {token.key!r}"
            )
        )
