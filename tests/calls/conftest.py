"""Fixtures for the calls tests: the carrier (telephony), a login that may view but not export
call records, call records (exports), and a Celery worker with beat (reservation lifecycle).

The roles' logins (analyst, operations, superuser) are the ones in tests/conftest.py.
"""

import itertools
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from celery_support import CeleryStack, broker_problem
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from telephony_support import AUTH_TOKEN, Carrier

from calls.models import CallRecord
from routing.models import Agent
from vendors.models import Vendor

BASE_TIME = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
_phones = itertools.count(4801230000)


@pytest.fixture
def call_viewer(make_staff) -> User:
    """An Operations login also given the call records' view and change permissions, but not
    the export one: what may see the records is not what may export them."""
    user = make_staff("otto", "Operations")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="calls", codename__in=["view_callrecord", "change_callrecord"]
        )
    )
    return user


@pytest.fixture
def call_viewer_client(client, call_viewer):
    client.force_login(call_viewer)
    return client


@pytest.fixture
def analyst_token(analyst) -> str:
    return Token.objects.create(user=analyst).key


@pytest.fixture
def call_viewer_token(call_viewer) -> str:
    return Token.objects.create(user=call_viewer).key


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
            call_status="completed",
            caller_id="+14805550100",
            caller_id_matches=False,
            billable=CallRecord.Billable.YES,
            payout=Decimal("25.00"),
            payout_currency="USD",
        ),
        _make_record(
            acme,
            minutes=60,
            state="CA",
            tracking={"lead_id": "L-2", "score": 7},
            billable=CallRecord.Billable.NO,
            not_billable_reason=CallRecord.NotBillableReason.NO_AGENT,
            payout=Decimal("0.00"),
        ),
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


@pytest.fixture
def celery_stack(transactional_db, tmp_path):
    """Celery on the configured broker: Redis in CI (never skipped there), else the local one."""
    problem = broker_problem()
    if problem:
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(problem)
        pytest.skip(problem)
    stack = CeleryStack(tmp_path)
    stack.purge()
    return stack
