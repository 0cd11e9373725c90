"""Fixtures for the calls tests: the carrier (telephony), and analysts, operations staff and
call records (exports).

The groups are made here, as the admin's data migration makes them, so these tests stand alone.
"""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from rest_framework.authtoken.models import Token
from telephony_support import AUTH_TOKEN, Carrier

from calls.models import CallRecord
from routing.models import Agent
from vendors.models import Vendor

BASE_TIME = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
_phones = itertools.count(4801230000)


def _group(name: str, codenames: list[str]) -> Group:
    group, _ = Group.objects.get_or_create(name=name)
    group.permissions.set(
        Permission.objects.filter(content_type__app_label="calls", codename__in=codenames)
    )
    return group


@pytest.fixture
def analyst(db) -> User:
    user = User.objects.create_user("ana", password="unused-password", is_staff=True)
    user.groups.add(_group("Analysts", ["view_callrecord", "export_callrecord"]))
    return user


@pytest.fixture
def operator(db) -> User:
    user = User.objects.create_user("otto", password="unused-password", is_staff=True)
    user.groups.add(_group("Operations", ["view_callrecord", "change_callrecord"]))
    return user


@pytest.fixture
def analyst_client(client, analyst):
    client.force_login(analyst)
    return client


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def analyst_token(analyst) -> str:
    return Token.objects.create(user=analyst).key


@pytest.fixture
def operator_token(operator) -> str:
    return Token.objects.create(user=operator).key


@pytest.fixture
def vendors(db) -> dict[str, Vendor]:
    return {
        "acme": Vendor.objects.create(name="Acme Leads", authorized_states=["AZ", "CA"]),
        "beta": Vendor.objects.create(name="Beta Media", all_states=True),
    }


@pytest.fixture
def agent(db) -> Agent:
    return Agent.objects.create(name="Alice Agent", destination="sip:alice@demo.invalid")


def _make_record(vendor: Vendor, *, minutes: int = 0, **values) -> CallRecord:
    """A call record received `minutes` after BASE_TIME."""
    defaults = {
        "vendor": vendor,
        "phone_number": f"+1{next(_phones)}",
        "state": "AZ",
        "state_source": CallRecord.StateSource.AREA_CODE,
        "outcome": CallRecord.Outcome.NO_AGENT,
        "received_at": BASE_TIME + timedelta(minutes=minutes),
        "tracking": {},
    }
    return CallRecord.objects.create(**(defaults | values))


@pytest.fixture
def make_record(db):
    return _make_record


@pytest.fixture
def base_time() -> datetime:
    return BASE_TIME


@pytest.fixture
def records(vendors, agent) -> list[CallRecord]:
    """Five records over three days, two vendors, their own tracking keys."""
    acme, beta = vendors["acme"], vendors["beta"]
    return [
        _make_record(
            acme,
            minutes=0,
            outcome=CallRecord.Outcome.COMPLETED,
            tracking={"lead_id": "L-1", "source": "google", "ad_id": "SUMMER-2025"},
            transfer_target="+18775703926",
            agent=agent,
            agent_count=3,
            ttl_seconds=60,
            connected_at=BASE_TIME + timedelta(seconds=20),
            ended_at=BASE_TIME + timedelta(seconds=200),
            duration_seconds=180,
        ),
        _make_record(acme, minutes=60, state="CA", tracking={"lead_id": "L-2", "score": 7}),
        _make_record(
            beta,
            minutes=24 * 60,
            state="TX",
            outcome=CallRecord.Outcome.EXPIRED,
            tracking={"campaign": "fall", "utm": {"medium": "cpc"}, "vip": True},
            transfer_target="+18775703927",
            agent_count=1,
            ttl_seconds=60,
        ),
        _make_record(
            beta,
            minutes=24 * 60 + 5,
            state="TX",
            outcome=CallRecord.Outcome.REJECTED,
            rejected_reason="Vendor is not active.",
            tracking={"campaign": "fall", "note": None},
        ),
        _make_record(acme, minutes=2 * 24 * 60, tracking={"lead_id": "L-5", "zeta": "last"}),
    ]


@pytest.fixture
def carrier(client, settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TELEPHONY_PUBLIC_BASE_URL = ""
    settings.TELEPHONY_OVERFLOW_NUMBER = ""
    settings.TELEPHONY_MAX_AGENT_TRIES = 3
    settings.TELEPHONY_DIAL_TIMEOUT_SECONDS = 20
    return Carrier(client)
