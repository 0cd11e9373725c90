"""Factories for the objects a test needs, so each test shows its own setup.

Defaults are the least a row needs; a test passes what its assertions depend on. The contract's
demo data (`seed_demo`, the `demo` fixture) is for tests about the guide's examples only.
"""

import importlib
from dataclasses import dataclass
from datetime import timedelta

import factory
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone
from factory.django import DjangoModelFactory

from calls.models import CallRecord
from routing.models import Agent, AgentLicense, Reservation, TransferNumber
from vendors.models import Vendor
from vendors.services import vendor_key_create

PASSWORD = "correct horse battery staple"


class VendorFactory(DjangoModelFactory):
    class Meta:
        model = Vendor
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Vendor {n}")
    authorized_states = factory.LazyFunction(lambda: ["AZ", "CA"])

    @classmethod
    def with_key(cls, *, key: str | None = None, **fields) -> tuple[Vendor, str]:
        """A vendor and a key of its own, as the admin makes one: (vendor, the key itself)."""
        vendor: Vendor = cls.create(**fields)
        return vendor, vendor_key(vendor, key=key)


def vendor_key(vendor: Vendor, *, label: str = "", key: str | None = None) -> str:
    """A new key for the vendor (random unless given); returns the key itself (only its digest
    is stored)."""
    _, plain = vendor_key_create(vendor=vendor, label=label, key=key)
    return plain


class AgentFactory(DjangoModelFactory):
    """An available agent; `licensed_states=["AZ", ...]` gives the licenses."""

    class Meta:
        model = Agent
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Agent {n}")
    destination = factory.Sequence(lambda n: f"sip:agent-{n}@example.invalid")

    @factory.post_generation
    def licensed_states(agent, create, states, **kwargs):
        for state in states or []:
            AgentLicense.objects.create(agent=agent, state=state)


class TransferNumberFactory(DjangoModelFactory):
    """Numbers in creation order: the first made is the first a ping is offered (lowest id)."""

    class Meta:
        model = TransferNumber

    number = factory.Sequence(lambda n: f"+1888570{n:04d}")


@dataclass
class Floor:
    """Who can take a call: free agents by the state they are licensed for, and the pool of
    transfer numbers in the order a ping is offered them (the first made first)."""

    agents: dict[str, list[Agent]]
    numbers: list[TransferNumber]


def floor_build(*, agents: dict[str, int], numbers: int) -> Floor:
    """`agents` free agents per state, each licensed for that state only, and `numbers`
    transfer numbers: floor_build(agents={"AZ": 3}, numbers=5)."""
    return Floor(
        agents={
            state: AgentFactory.create_batch(count, licensed_states=[state])
            for state, count in agents.items()
        },
        numbers=TransferNumberFactory.create_batch(numbers),
    )


class ReservationFactory(DjangoModelFactory):
    """A live reservation made now for `ttl_seconds` (the rows it holds are not marked held)."""

    class Meta:
        model = Reservation

    vendor = factory.SubFactory(VendorFactory)
    agent = factory.SubFactory(AgentFactory, licensed_states=["AZ"])
    transfer_number = factory.SubFactory(TransferNumberFactory)
    phone_number = factory.Sequence(lambda n: f"+1480555{n:04d}")
    state = "AZ"
    agent_count = 1
    ttl_seconds = 60
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda r: r.created_at + timedelta(seconds=r.ttl_seconds))


class CallRecordFactory(DjangoModelFactory):
    """A ping's record; `no_agent` unless a test says otherwise."""

    class Meta:
        model = CallRecord

    vendor = factory.SubFactory(VendorFactory)
    phone_number = factory.Sequence(lambda n: f"+1480123{n:04d}")
    state = "AZ"
    state_source = CallRecord.StateSource.AREA_CODE
    outcome = CallRecord.Outcome.NO_AGENT
    received_at = factory.LazyFunction(timezone.now)
    tracking = factory.LazyFunction(dict)


def role_grants(name: str) -> list[tuple[str, list[str]]]:
    """(app label, permission codenames) that the staff-roles migrations give the role, read from
    their three shapes: by app and model (0004, 0011), actions on billing rules (settlement), and
    codenames by app for Operations (the do-not-call list)."""
    grants: list[tuple[str, list[str]]] = []
    for by_app in (
        importlib.import_module("calls.migrations.0004_staff_roles").ROLES.get(name, {}),
        importlib.import_module("calls.migrations.0011_admin_for_staff").GRANTS.get(name, {}),
    ):
        for app_label, by_model in by_app.items():
            for model, actions in by_model.items():
                grants.append((app_label, [f"{action}_{model}" for action in actions]))
    settlement = importlib.import_module("calls.migrations.0013_settlement_roles").GRANTS
    grants.append(("calls", [f"{action}_billingrule" for action in settlement.get(name, [])]))
    if name == "Operations":
        do_not_call = importlib.import_module("routing.migrations.0014_do_not_call_roles")
        grants += do_not_call.OPERATIONS_MAY.items()
    return grants


def role_group(name: str) -> Group:
    """The role's group with the permissions the staff-roles migrations give it; made again
    when a transactional test's flush has emptied the table the migrations filled."""
    group, created = Group.objects.get_or_create(name=name)
    if created:
        for app_label, codenames in role_grants(name):
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label, codename__in=codenames
                )
            )
    return group


class UserFactory(DjangoModelFactory):
    """A login with a known password (PASSWORD); no staff flag, no role."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    """A staff login; `role="Operations"` or `"Analysts"` puts it in that group (as the
    migration made it, with the migration's permissions)."""

    is_staff = True

    @factory.post_generation
    def role(user, create, role, **kwargs):
        if role:
            user.groups.add(role_group(role))


class SuperuserFactory(UserFactory):
    is_staff = True
    is_superuser = True


# The vendor admin page's tables (keys, caps, opening hours, holidays) with no rows: a post of
# the vendor form must carry each table's management form.
VENDOR_FORM_NO_INLINE_ROWS = {
    f"{prefix}-{name}": "0"
    for prefix in ("keys", "caps", "opening_hours", "holidays")
    for name in ("TOTAL_FORMS", "INITIAL_FORMS")
}
