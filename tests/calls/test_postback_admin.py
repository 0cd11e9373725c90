"""Postbacks in the staff admin: an endpoint's secret shown once, private addresses refused, the
delivery log with its attempts, and resend."""

import re
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from calls.postbacks.events import postback_events_collect
from calls.postbacks.models import PostbackAttempt, PostbackDelivery, PostbackEndpoint
from calls.postbacks.services import postback_endpoint_create
from tests.factories import CallRecordFactory, VendorFactory

pytestmark = pytest.mark.django_db
SECRET_ON_PAGE = re.compile(r'<code id="postback-secret"[^>]*>(whsec_[\w-]+)</code>')
ADD_URL = "/admin/postbacks/postbackendpoint/add/"
GONE = "This secret was shown once and is not shown again"


@pytest.fixture
def acme():
    return VendorFactory(name="Acme Leads")


@pytest.fixture(autouse=True)
def public_lookups_only(settings):
    settings.POSTBACK_ALLOW_PRIVATE_HOSTS = False


def add(client, vendor, url="https://93.184.215.14/hooks", events=("completed", "billable")):
    return client.post(
        ADD_URL,
        {"vendor": vendor.pk, "url": url, "events": list(events), "is_active": "on"},
    )


def test_a_new_endpoints_secret_is_shown_once(operations_client, acme):
    created = add(operations_client, acme)

    endpoint = PostbackEndpoint.objects.get()
    reveal_url = f"/admin/postbacks/postbackendpoint/{endpoint.pk}/reveal/"
    assert (created.status_code, created["Location"]) == (303, reveal_url)
    shown = operations_client.get(reveal_url)
    secret = SECRET_ON_PAGE.search(shown.content.decode())[1]
    assert secret == endpoint.secret
    assert endpoint.events == ["billable", "completed"]
    assert "no-store" in shown["Cache-Control"]

    reloaded = operations_client.get(reveal_url)
    page = reloaded.content.decode()
    assert GONE in page and secret not in page
    assert all(secret not in str(session.get_decoded()) for session in Session.objects.all())
    # Nor on the endpoint's own page: only its first characters.
    change = operations_client.get(f"/admin/postbacks/postbackendpoint/{endpoint.pk}/change/")
    assert secret not in change.content.decode()
    assert endpoint.secret_hint in change.content.decode()


def test_replacing_the_secret_shows_the_new_one_once(operations_client, acme):
    endpoint, old = postback_endpoint_create(
        vendor=acme, url="https://93.184.215.14/hooks", events=["completed"]
    )
    url = f"/admin/postbacks/postbackendpoint/{endpoint.pk}/rotate-secret/"
    assert operations_client.get(url).status_code == 200
    replaced = operations_client.post(url)
    shown = operations_client.get(replaced["Location"])
    new = SECRET_ON_PAGE.search(shown.content.decode())[1]
    endpoint.refresh_from_db()
    assert new == endpoint.secret != old
    assert GONE in operations_client.get(replaced["Location"]).content.decode()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://127.0.0.1/hooks", "127.0.0.1, which is not a public address"),
        ("https://169.254.169.254/latest", "169.254.169.254, which is not a public address"),
        ("http://93.184.215.14/hooks", "Postback URLs must use https://."),
    ],
)
def test_staff_are_told_why_an_address_is_refused(operations_client, acme, url, message):
    answer = add(operations_client, acme, url=url)
    assert answer.status_code == 200
    assert message in answer.content.decode()
    assert not PostbackEndpoint.objects.exists()


def test_the_delivery_log_shows_attempts_and_staff_can_resend(operations_client, acme):
    postback_endpoint_create(vendor=acme, url="https://93.184.215.14/hooks", events=["completed"])
    record = CallRecordFactory(
        vendor=acme, outcome="completed", duration_seconds=120, ended_at=timezone.now()
    )
    now = timezone.now()
    postback_events_collect(now=now)
    delivery = PostbackDelivery.objects.get()
    PostbackAttempt.objects.create(
        delivery=delivery, attempted_at=now, status_code=503, error="HTTP 503: busy"
    )
    PostbackDelivery.objects.filter(pk=delivery.pk).update(
        status="failed", attempts=13, last_status_code=503, last_error="HTTP 503: busy",
        next_attempt_at=None,
    )  # fmt: skip

    listing = operations_client.get("/admin/postbacks/postbackdelivery/")
    page = listing.content.decode()
    assert listing.status_code == 200
    assert str(record.request_id) in page and "HTTP 503: busy" in page
    detail = operations_client.get(f"/admin/postbacks/postbackdelivery/{delivery.pk}/change/")
    assert "HTTP 503: busy" in detail.content.decode()

    resent = operations_client.post(
        "/admin/postbacks/postbackdelivery/",
        {"action": "resend", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert "1 postbacks will be sent again" in resent.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.next_attempt_at is not None
    assert delivery.give_up_at > timezone.now() + timedelta(hours=23)


def test_analysts_read_the_log_but_cannot_resend(analyst_client, acme):
    postback_endpoint_create(vendor=acme, url="https://93.184.215.14/hooks", events=["completed"])
    CallRecordFactory(vendor=acme, outcome="completed", ended_at=timezone.now())
    postback_events_collect(now=timezone.now())
    delivery = PostbackDelivery.objects.get()
    assert analyst_client.get("/admin/postbacks/postbackdelivery/").status_code == 200
    analyst_client.post(
        "/admin/postbacks/postbackdelivery/",
        {"action": "resend", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == delivery.created_at  # untouched
    assert analyst_client.get(ADD_URL).status_code == 403
