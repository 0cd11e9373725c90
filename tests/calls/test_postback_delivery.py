"""Postbacks to a real HTTP server: signed as the vendor guide says, retried, never to private
addresses unless allowed, and each event collected once."""

import json
import shutil
import subprocess
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from postback_receiver import (
    guide_code,
    guide_python_check,
    postback_receiver,
    self_signed_certificate,
)

from calls.models import CallRecord
from calls.postbacks.addresses import PostbackAddressRefused, postback_url_check
from calls.postbacks.delivery import postback_deliver, postback_deliveries_hand_out
from calls.postbacks.events import postback_events_collect
from calls.postbacks.models import PostbackDelivery, PostbackEndpoint
from calls.postbacks.services import PostbackEndpointInvalid, postback_endpoint_create
from tests.factories import CallRecordFactory, VendorFactory, floor_build

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_receivers(settings):
    settings.POSTBACK_ALLOW_PRIVATE_HOSTS = True  # the test's server is on 127.0.0.1
    settings.POSTBACK_READ_TIMEOUT_SECONDS = 1
    settings.POSTBACK_RETRY_BASE_SECONDS = 30


@pytest.fixture
def acme():
    return VendorFactory(name="Acme Leads", authorized_states=["AZ"])


def completed_call(vendor, **values) -> CallRecord:
    now = timezone.now()
    fields = {
        "vendor": vendor,
        "outcome": CallRecord.Outcome.COMPLETED,
        "tracking": {"lead_id": "L-77", "source": "search"},
        "transfer_target": "+18775703926",
        "received_at": now,
        "connected_at": now,
        "ended_at": now,
        "duration_seconds": 184,
        "caller_id_matches": True,
    }
    return CallRecordFactory.create(**(fields | values))


def send_due(now):
    """What beat's sweep and the workers do, here in the test's thread."""
    postback_events_collect(now=now)
    for delivery_id, lease in postback_deliveries_hand_out(now=now):
        postback_deliver(delivery_id=delivery_id, lease=lease, now=now)


def endpoint_for(vendor, url, events=("completed",)):
    return postback_endpoint_create(vendor=vendor, url=url, events=list(events))


def test_it_posts_a_completed_call_signed_so_the_guides_python_check_accepts_it(acme):
    with postback_receiver(200) as receiver:
        _, secret = endpoint_for(acme, receiver.url("/hooks/calls?source=us"))
        record = completed_call(acme)
        send_due(timezone.now())
        [received] = receiver.wait_for(1)

    assert received.path == "/hooks/calls?source=us"
    body = json.loads(received.body)
    assert body | {"eventId": "-", "occurredAt": "-", "receivedAt": "-"} == {
        "event": "completed",
        "eventId": "-",
        "occurredAt": "-",
        "requestId": str(record.request_id),
        "tracking": {"lead_id": "L-77", "source": "search"},
        "outcome": "completed",
        "reason": None,
        "sandbox": False,
        "receivedAt": "-",
        "phoneNumber": record.phone_number,
        "state": "AZ",
        "talkTimeSeconds": 184,
        "callerIdMatch": True,
        "billable": body["billable"],
        "billableReason": body["billableReason"],
        "payout": body["payout"],
    }
    assert received.headers["Idempotency-Key"] == body["eventId"]
    assert received.headers["X-Postback-Event"] == "completed"
    assert received.headers["Content-Type"] == "application/json"
    postback_is_genuine = guide_python_check()
    assert postback_is_genuine(secret, received.headers["X-Signature"], received.body)
    assert not postback_is_genuine("whsec_other", received.headers["X-Signature"], received.body)
    assert not postback_is_genuine(secret, received.headers["X-Signature"], received.body + b" ")
    delivery = PostbackDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.tries.get().status_code == 200


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_guides_node_check_accepts_the_signature_too(acme):
    with postback_receiver(200) as receiver:
        _, secret = endpoint_for(acme, receiver.url())
        completed_call(acme)
        send_due(timezone.now())
        [received] = receiver.wait_for(1)
    script = guide_code("javascript", "function postbackIsGenuine") + (
        "\nconst [secret, header, body] = process.argv.slice(1);"
        "\nconsole.log(postbackIsGenuine(secret, header, Buffer.from(body, 'base64')),"
        " postbackIsGenuine(secret + 'x', header, Buffer.from(body, 'base64')));"
    )
    import base64

    result = subprocess.run(
        ["node", "-e", script, secret, received.headers["X-Signature"],
         base64.b64encode(received.body).decode()],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert result.stdout.split() == ["true", "false"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_it_posts_over_https_verifying_the_certificate(acme, tmp_path, monkeypatch):
    cert, key = self_signed_certificate(tmp_path)
    with postback_receiver(200, tls=(cert, key)) as receiver:
        endpoint_for(acme, receiver.url(host="localhost"))
        completed_call(acme)
        now = timezone.now()
        send_due(now)  # our certificate is not trusted yet: refused, and retried later
        delivery = PostbackDelivery.objects.get()
        assert delivery.status == "pending"
        assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the vendor's certificate is trusted
        send_due(now + timedelta(seconds=30))
        [received] = receiver.wait_for(1)
    assert json.loads(received.body)["event"] == "completed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)


def test_it_retries_after_a_500_with_the_same_body_and_idempotency_key(acme):
    now = timezone.now()
    with postback_receiver(500, 200) as receiver:
        endpoint_for(acme, receiver.url())
        completed_call(acme)
        send_due(now)
        delivery = PostbackDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "pending", 1, 500
        )  # fmt: skip
        assert delivery.last_error == "HTTP 500: something broke"
        assert delivery.next_attempt_at == now + timedelta(seconds=30)

        send_due(now + timedelta(seconds=29))  # not due yet
        assert len(receiver.received) == 1
        send_due(now + timedelta(seconds=30))
        first, second = receiver.wait_for(2)

    assert first.body == second.body
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    assert [t.status_code for t in delivery.tries.order_by("attempted_at")] == [500, 200]


def test_it_retries_after_a_timeout_and_the_pause_doubles(acme):
    now = timezone.now()
    with postback_receiver("hang", "hang", 200) as receiver:
        endpoint_for(acme, receiver.url())
        completed_call(acme)
        send_due(now)
        delivery = PostbackDelivery.objects.get()
        assert (delivery.status, delivery.last_status_code, delivery.last_error) == (
            "pending", None, "Timed out."
        )  # fmt: skip
        assert delivery.next_attempt_at == now + timedelta(seconds=30)
        later = now + timedelta(seconds=30)
        send_due(later)
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == later + timedelta(seconds=60)
        send_due(later + timedelta(seconds=60))
        receiver.wait_for(3)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)


def test_it_gives_up_a_day_after_the_event(acme, settings):
    now = timezone.now()
    with postback_receiver(*[503] * 30) as receiver:
        endpoint_for(acme, receiver.url())
        completed_call(acme)
        moment = now
        for _ in range(30):
            send_due(moment)
            delivery = PostbackDelivery.objects.get()
            if delivery.status != "pending":
                break
            moment = delivery.next_attempt_at
    assert delivery.status == "failed"
    assert delivery.next_attempt_at is None
    assert now + timedelta(hours=20) < delivery.last_attempt_at <= now + timedelta(days=1)
    # 30 s, then doubling up to 6 hours a pause: 13 tries in the day.
    assert delivery.attempts == 13 == len(receiver.received)


def test_a_slow_endpoint_holds_a_worker_no_longer_than_its_timeouts(acme):
    with postback_receiver("hang") as receiver:
        endpoint_for(acme, receiver.url())
        completed_call(acme)
        started = timezone.now()
        send_due(started)
    assert (timezone.now() - started).total_seconds() < 3


def test_each_event_is_collected_once_and_only_what_the_endpoint_wants(acme):
    with postback_receiver() as receiver:
        endpoint_for(acme, receiver.url(), events=["completed", "expired"])
        completed_call(acme)
        completed_call(
            acme, outcome="expired", duration_seconds=None, billing_decided_at=timezone.now()
        )
        completed_call(acme, outcome=CallRecord.Outcome.NO_AGENT, transfer_target="")
        completed_call(VendorFactory(name="Other Vendor"))  # not Acme's
        now = timezone.now()
        postback_events_collect(now=now)
        postback_events_collect(now=now)
    assert sorted(PostbackDelivery.objects.values_list("event", flat=True)) == [
        "completed",
        "expired",
    ]


def test_a_billable_call_is_posted_with_its_payout(acme):
    with postback_receiver(200) as receiver:
        endpoint_for(acme, receiver.url(), events=["billable"])
        decided = timezone.now()
        completed_call(
            acme, billable="yes", payout=Decimal("25.00"), payout_currency="USD",
            billing_decided_at=decided,
        )  # fmt: skip
        completed_call(
            acme, billable="no", not_billable_reason="under_minimum", payout=0,
            billing_decided_at=decided,
        )  # fmt: skip
        send_due(timezone.now())
        [received] = receiver.wait_for(1)
    body = json.loads(received.body)
    assert (body["event"], body["billable"], body["billableReason"], body["payout"]) == (
        "billable", "yes", None, {"amount": "25.00", "currency": "USD"}
    )  # fmt: skip


def test_a_released_hold_is_posted_as_expired(acme):
    with postback_receiver() as receiver:
        endpoint_for(acme, receiver.url(), events=["expired"])
        completed_call(
            acme, outcome="released", duration_seconds=None, billing_decided_at=timezone.now()
        )
        send_due(timezone.now())
        [received] = receiver.wait_for(1)
    body = json.loads(received.body)
    assert (body["event"], body["outcome"]) == ("expired", "released")


def test_a_sweep_reads_the_events_since_its_last_run_however_old_the_ping(acme):
    with postback_receiver() as receiver:
        endpoint, _ = endpoint_for(acme, receiver.url())
        PostbackEndpoint.objects.filter(pk=endpoint.pk).update(
            created_at=timezone.now() - timedelta(hours=5)
        )
        now = timezone.now()
        postback_events_collect(now=now - timedelta(minutes=30))  # the last sweep
        # A long call, pinged four hours ago, ends now; one that ended before the last sweep
        # (less its margin for late commits) was that sweep's to collect.
        long_call = completed_call(acme, received_at=now - timedelta(hours=4))
        completed_call(
            acme, received_at=now - timedelta(hours=4), ended_at=now - timedelta(hours=1)
        )
        postback_events_collect(now=now)
    assert [d.call_record_id for d in PostbackDelivery.objects.all()] == [long_call.pk]


def test_a_refused_ping_is_posted_as_refused_and_a_no_agent_one_not_at_all(acme):
    with postback_receiver() as receiver:
        endpoint_for(acme, receiver.url(), events=["refused", "reserved"])
        refused = completed_call(
            acme, outcome="refused", reason="do_not_call", transfer_target="", duration_seconds=None
        )
        completed_call(
            acme, outcome="no_agent", reason="no_agent", transfer_target="", duration_seconds=None
        )
        send_due(timezone.now())
        [received] = receiver.wait_for(1)
    body = json.loads(received.body)
    assert (body["event"], body["requestId"], body["reason"]) == (
        "refused",
        str(refused.request_id),
        "do_not_call",
    )


def test_a_new_endpoint_is_not_sent_calls_from_before_it_existed(acme):
    completed_call(acme, received_at=timezone.now() - timedelta(hours=1))
    with postback_receiver() as receiver:
        endpoint_for(acme, receiver.url())
        postback_events_collect(now=timezone.now())
    assert not PostbackDelivery.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
    ],
)
def test_it_refuses_non_public_addresses(url, settings):
    settings.POSTBACK_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(PostbackAddressRefused, match="not a public address"):
        postback_url_check(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.215.14/hook", "must use https"),
        ("ftp://93.184.215.14/hook", "must use https"),
        ("https://user:pass@93.184.215.14/hook", "Credentials"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
        ("https:///hook", "no host"),
    ],
)
def test_it_refuses_urls_that_are_not_plain_https(url, message, settings):
    settings.POSTBACK_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(PostbackAddressRefused, match=message):
        postback_url_check(url)


def test_a_public_address_is_accepted(settings):
    settings.POSTBACK_ALLOW_PRIVATE_HOSTS = False
    target = postback_url_check("https://93.184.215.14:8443/hook?x=1")
    assert (target.address, target.port, target.path) == ("93.184.215.14", 8443, "/hook?x=1")


def test_staff_cannot_save_an_endpoint_on_a_private_address(acme, settings):
    settings.POSTBACK_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(PostbackEndpointInvalid, match="not a public address"):
        endpoint_for(acme, "https://127.0.0.1/hook")


def test_the_address_is_checked_again_at_delivery_time(acme, settings):
    with postback_receiver() as receiver:
        endpoint_for(acme, receiver.url())
        completed_call(acme)
        settings.POSTBACK_ALLOW_PRIVATE_HOSTS = False  # e.g. the host now resolves privately
        send_due(timezone.now())
        assert receiver.received == []
    delivery = PostbackDelivery.objects.get()
    assert delivery.status == "pending"
    assert "must use https" in delivery.last_error


def test_a_delivery_handed_out_twice_is_sent_once(acme):
    with postback_receiver() as receiver:
        endpoint_for(acme, receiver.url())
        completed_call(acme)
        now = timezone.now()
        postback_events_collect(now=now)
        [(delivery_id, lease)] = postback_deliveries_hand_out(now=now)
        assert postback_deliveries_hand_out(now=now) == []  # leased: not handed out again
        assert postback_deliver(delivery_id=delivery_id, lease=lease, now=now)
        assert not postback_deliver(delivery_id=delivery_id, lease=lease, now=now)  # redelivered
        assert len(receiver.wait_for(1)) == 1


def test_a_hanging_endpoint_never_slows_a_ping_and_its_event_is_collected_after(ping, settings):
    settings.POSTBACK_READ_TIMEOUT_SECONDS = 4  # what a ping would wait if it sent postbacks
    vendor, key = VendorFactory.with_key(name="Acme Leads", authorized_states=["AZ"])
    floor_build(agents={"AZ": 1}, numbers=1)
    with postback_receiver("hang") as receiver:
        endpoint_for(vendor, receiver.url(), events=["reserved"])
        started = time.monotonic()
        answer = ping({"vendorKey": key, "phoneNumber": "+14801234567", "stateCode": "AZ"})
        elapsed = time.monotonic() - started
        assert answer.status_code == 200 and answer.json()["data"]["agentAvailable"] is True
        assert elapsed < 2
        assert not PostbackDelivery.objects.exists()  # the ping itself wrote no outbox row
        postback_events_collect(now=timezone.now())
    delivery = PostbackDelivery.objects.get()
    assert (delivery.event, str(delivery.call_record.request_id)) == (
        "reserved", answer.json()["data"]["requestId"]
    )  # fmt: skip
