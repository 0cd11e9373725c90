"""A ping that passes the checks: what it reserves, answers, and records."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import CallRecord
from calls.ping.service import KeyValidation, PingAnswer, vendor_ping
from calls.ping.views import ping_answer_data
from calls.timestamps import format_timestamp
from routing.allocation import NUMBER_WINDOW
from routing.models import Agent, Reservation, TransferNumber
from tests.factories import VendorFactory, floor_build

KEY = "0d9c5a2e-4f7b-4c1e-9a36-8e2b7f1c5d40"
ALL_STATES_KEY = "7e4b1c9a-2d3f-4a8e-b5c6-1f0e9d8c7b6a"


@pytest.fixture(autouse=True)
def floor(db):
    """A vendor for AZ and CA with KEY, one for every state with ALL_STATES_KEY; three agents
    licensed for AZ, two for CA, none anywhere else; ten transfer numbers."""
    VendorFactory.with_key(name="Acme Leads", authorized_states=["AZ", "CA"], key=KEY)
    VendorFactory.with_key(name="Everywhere Leads", all_states=True, key=ALL_STATES_KEY)
    return floor_build(agents={"AZ": 3, "CA": 2}, numbers=10)


def ping_at(moment, **fields):
    """The ping service itself at a chosen moment: a fake clock instead of waiting out a TTL."""
    payload = {"vendorKey": KEY, **fields}
    request_id = str(uuid.uuid4())
    # The answer's `data` as the view renders it.
    return ping_answer_data(
        vendor_ping(payload=payload, request_id=request_id, now=moment), request_id
    )


@pytest.mark.parametrize(
    "phone",
    [
        "+14801234567",
        "14801234567",
        "4801234567",
        "+1 480 123 4567",
        "(480) 123-4567",
        "480.123.4567",
        "+1-480-123-4567",
        "1 (480) 123.4567",
        "+14800234567",  # exchange codes are not checked, not even a leading 0
    ],
)
def test_it_accepts_the_guides_phone_formats_and_stores_e164(ping, phone):
    response = ping({"vendorKey": KEY, "phoneNumber": phone})

    assert response.status_code == 200
    assert response.json()["data"]["agentAvailable"] is True
    record = CallRecord.objects.get()
    assert record.phone_number == "+1" + "".join(c for c in phone if c.isdigit())[-10:]
    assert (record.state, record.state_source) == ("AZ", "area_code")


@pytest.mark.parametrize("phone", ["+17875550100", "+13405550100", "+16715550100", "+12025550100"])
def test_it_takes_territories_and_dc_from_the_area_code(ping, phone):
    response = ping({"vendorKey": ALL_STATES_KEY, "phoneNumber": phone})

    assert response.status_code == 200
    assert response.json()["data"] == {
        "agentAvailable": False,  # no agent here is licensed there
        "reason": "no_agent",
        "retryAfterSeconds": 60,  # PING_RETRY_AFTER_DEFAULT_SECONDS: no hold will end there
        "timestamp": response.json()["data"]["timestamp"],
        "requestId": response["X-Request-ID"],
    }
    record = CallRecord.objects.get()
    assert record.outcome == "no_agent"
    assert record.state == {"787": "PR", "340": "VI", "671": "GU", "202": "DC"}[phone[2:5]]


def test_a_state_code_overrides_the_area_code(ping):
    # A Dallas number, but the vendor says the caller is in California.
    response = ping({"vendorKey": KEY, "phoneNumber": "+12145550100", "stateCode": "ca"})

    assert response.status_code == 200
    assert response.json()["data"]["agentAvailable"] is True
    record = CallRecord.objects.get()
    assert (record.state, record.state_source) == ("CA", "state_code")
    assert record.agent.licenses.filter(state="CA").exists()


def test_a_null_state_code_is_the_same_as_none(ping):
    response = ping({"vendorKey": KEY, "phoneNumber": "+14801234567", "stateCode": None})

    assert response.status_code == 200
    assert CallRecord.objects.get().state_source == "area_code"


def test_it_stores_the_tracking_data_verbatim(ping):
    tracking = {
        "lead_id": "L-12345",
        "ad_id": 98765,
        "score": 0.75,
        "is_test": False,
        "nothing": None,
        "tags": ["a", "b", {"nested": [1, 2.5, "x"]}],
        "meta": {"utm": {"source": "google", "campaign": "SUMMER-2025"}},
        "unicode": "Ünïcødé ☎",
        "formula": '=HYPERLINK("http://x","y")',
    }

    response = ping({"vendorKey": KEY, "phoneNumber": "+14801234567", **tracking})

    assert response.status_code == 200
    record = CallRecord.objects.get()
    record.refresh_from_db()
    assert record.tracking == tracking


def test_tracking_data_no_database_can_hold_is_kept_readable_not_refused(ping):
    raw = (
        '{"vendorKey": "' + KEY + '", "phoneNumber": "+14801234567", '
        '"nul": "a\\u0000b", "surrogate": "\\ud800x", "huge": 1e400, '
        '"long": ' + "9" * 5000 + "}"
    )

    response = ping(raw)

    assert response.status_code == 200
    record = CallRecord.objects.get()
    record.refresh_from_db()
    assert record.tracking == {
        "nul": "a\ufffdb",
        "surrogate": "\ufffdx",
        "huge": "1e400",
        # Past Python's limit on converting digits to an int (4,300): kept as its text too.
        "long": "9" * 5000,
    }


def test_it_reserves_an_agent_and_a_number_and_records_it(ping, floor):
    response = ping({"vendorKey": KEY, "phoneNumber": "+14801234567", "lead_id": "L-1"})

    data = response.json()["data"]
    reservation = Reservation.objects.get()
    record = CallRecord.objects.get()
    assert reservation.status == "active"
    assert str(reservation.transfer_number.number) == data["transferTarget"]
    assert reservation.agent.licenses.filter(state="AZ").exists()
    assert reservation.expires_at - reservation.created_at == timedelta(seconds=60)
    assert record.outcome == "reserved"
    assert record.reservation == reservation
    assert record.agent == reservation.agent
    assert record.transfer_target == data["transferTarget"]
    assert (record.agent_count, record.ttl_seconds) == (len(floor.agents["AZ"]), 60)
    assert str(record.request_id) == data["requestId"]
    assert record.vendor.name == "Acme Leads"


def test_each_ping_for_a_new_caller_takes_another_agent_and_number(ping, floor):
    az_agents = len(floor.agents["AZ"])
    answers = [
        ping({"vendorKey": KEY, "phoneNumber": f"+1480555010{i}"}).json()["data"]
        for i in range(az_agents + 1)
    ]

    assert [a["agentAvailable"] for a in answers] == [True] * az_agents + [False]
    # Each answer counts the free agents, the one it reserves included: 3, 2, 1.
    assert [a.get("agentCount") for a in answers] == [*range(az_agents, 0, -1), None]
    targets = [a["transferTarget"] for a in answers[:az_agents]]
    assert len(set(targets)) == az_agents
    assert targets[0] == str(floor.numbers[0].number)
    assert Reservation.objects.values("agent").distinct().count() == az_agents
    assert list(CallRecord.objects.order_by("id").values_list("outcome", flat=True)) == [
        *["reserved"] * az_agents,
        "no_agent",
    ]


def test_it_offers_the_longest_idle_agent_first(floor):
    now = timezone.now()
    agents = floor.agents["AZ"]
    for minutes_idle, agent in zip([5, 30, 10], agents, strict=True):
        Agent.objects.filter(pk=agent.pk).update(idle_since=now - timedelta(minutes=minutes_idle))

    ping_at(now, phoneNumber="+14805550100")

    assert Reservation.objects.get().agent == agents[1]


def test_it_hands_out_the_number_released_longest_ago(floor):
    now = timezone.now()
    TransferNumber.objects.update(held_until=now - timedelta(seconds=5))
    oldest = floor.numbers[7]
    TransferNumber.objects.filter(pk=oldest.pk).update(held_until=now - timedelta(hours=1))

    data = ping_at(now, phoneNumber="+14805550100")

    assert data["transferTarget"] == str(oldest.number)


def grow_pool_and_az_agents(*, numbers: int, agents: int, now) -> list[TransferNumber]:
    """A pool of `numbers` transfer numbers, all released an hour ago, and `agents` free AZ
    agents: room for that many reservations at one instant. The pool in id order."""
    TransferNumber.objects.bulk_create(
        TransferNumber(number=f"+1888555{index:04d}")
        for index in range(numbers - TransferNumber.objects.count())
    )
    TransferNumber.objects.update(held_until=now - timedelta(hours=1))
    for index in range(agents):
        Agent.objects.create(name=f"Extra {index}", destination="+15005550006").licenses.create(
            state="AZ"
        )
    return list(TransferNumber.objects.order_by("id"))


def test_a_number_released_moments_ago_waits_while_others_rested_longer():
    # The pool is larger than the window a ping chooses from: whichever part of it a ping
    # looks at, the number just released is the last it would take.
    now = timezone.now()
    pool = grow_pool_and_az_agents(numbers=100, agents=30, now=now)
    just_released = pool[50]
    TransferNumber.objects.filter(pk=just_released.pk).update(held_until=now - timedelta(seconds=1))

    targets = {ping_at(now, phoneNumber=f"+1480555{i:04d}")["transferTarget"] for i in range(30)}

    assert len(targets) == 30
    assert str(just_released.number) not in targets


def test_holds_are_spread_over_a_large_pool():
    # Not always the first numbers of the pool: a number in use is not handed out again at
    # once, and a late call to it is less likely to find someone else's reservation.
    now = timezone.now()
    pool = grow_pool_and_az_agents(numbers=200, agents=20, now=now)
    first_window = {str(number.number) for number in pool[:NUMBER_WINDOW]}

    targets = {ping_at(now, phoneNumber=f"+1480555{i:04d}")["transferTarget"] for i in range(20)}

    assert len(targets) == 20
    assert not targets <= first_window


def test_offline_and_busy_agents_are_not_offered_or_counted(floor):
    now = timezone.now()
    offline, busy, free = floor.agents["AZ"]
    Agent.objects.filter(pk=offline.pk).update(status=Agent.Status.OFFLINE)
    Agent.objects.filter(pk=busy.pk).update(on_call_since=now)

    data = ping_at(now, phoneNumber="+14805550100")

    assert data["agentCount"] == 1
    assert Reservation.objects.get().agent == free


def test_a_repeat_answers_as_the_first_did_and_reserves_nothing_new(floor):
    now = timezone.now()
    first = ping_at(now, phoneNumber="+14805550100", stateCode="AZ", lead_id="L-1")

    repeat = ping_at(now + timedelta(seconds=20.5), phoneNumber="(480) 555-0100", lead_id="L-2")

    assert repeat["transferTarget"] == first["transferTarget"]
    assert repeat["agentCount"] == first["agentCount"] == len(floor.agents["AZ"])
    assert repeat["ttlSeconds"] == 40  # 39.5 s left, rounded up
    assert repeat["requestId"] != first["requestId"]
    assert repeat["timestamp"] != first["timestamp"]
    assert Reservation.objects.count() == 1
    original, echo = CallRecord.objects.order_by("received_at")
    assert echo.outcome == "repeat"
    assert echo.repeat_of == original
    assert echo.reservation == original.reservation
    assert echo.tracking == {"lead_id": "L-2"}
    assert echo.ttl_seconds == 40


def test_a_repeat_in_the_last_instant_answers_at_least_one_second():
    now = timezone.now()
    ping_at(now, phoneNumber="+14805550100")

    repeat = ping_at(now + timedelta(seconds=59.999), phoneNumber="+14805550100")

    assert repeat["ttlSeconds"] == 1


def test_the_same_caller_in_another_state_is_a_repeat_of_the_first():
    # One caller of one vendor is one caller, whatever state each ping names: the vendor
    # authorized everywhere, pinging for AZ, then CA, then TX.
    now = timezone.now()
    first = ping_at(now, vendorKey=ALL_STATES_KEY, phoneNumber="+14805550100", stateCode="AZ")

    answers = [
        ping_at(now + timedelta(seconds=10), vendorKey=ALL_STATES_KEY,
                phoneNumber="+14805550100", stateCode="CA"),
        ping_at(now + timedelta(seconds=20), vendorKey=ALL_STATES_KEY,
                phoneNumber="4805550100", stateCode="TX"),
    ]  # fmt: skip

    assert first["agentAvailable"] is True
    assert [answer["transferTarget"] for answer in answers] == [first["transferTarget"]] * 2
    assert [answer["ttlSeconds"] for answer in answers] == [50, 40]
    assert [answer["agentCount"] for answer in answers] == [first["agentCount"]] * 2
    reservation = Reservation.objects.get()
    assert reservation.state == "AZ"
    assert Agent.objects.exclude(held_until=None).count() == 1
    original, *repeats = CallRecord.objects.order_by("received_at")
    assert original.outcome == "reserved"
    assert [(record.outcome, record.state) for record in repeats] == [
        ("repeat", "CA"), ("repeat", "TX")
    ]  # fmt: skip
    assert {(record.repeat_of, record.reservation) for record in repeats} == {
        (original, reservation)
    }


def test_a_reservation_past_its_ttl_holds_nothing_with_no_worker_running(floor):
    az_agents = len(floor.agents["AZ"])
    now = timezone.now()
    for i in range(az_agents):
        ping_at(now, phoneNumber=f"+1480555010{i}")
    assert ping_at(now + timedelta(seconds=59), phoneNumber="+14805550199")["agentAvailable"] is (
        False
    )

    later = ping_at(now + timedelta(seconds=60), phoneNumber="+14805550199")

    assert later["agentAvailable"] is True
    assert later["agentCount"] == az_agents
    # The agent freed by time kept their place: nobody's idle clock restarted.
    assert Agent.objects.filter(idle_since__gt=now).count() == 0


def test_after_the_ttl_the_same_caller_gets_a_new_reservation_not_a_repeat():
    now = timezone.now()
    ping_at(now, phoneNumber="+14805550100")

    again = ping_at(now + timedelta(seconds=61), phoneNumber="+14805550100")

    assert again["ttlSeconds"] == 60
    assert Reservation.objects.filter(status="active").count() == 1
    assert Reservation.objects.filter(status="expired").count() == 1
    assert CallRecord.objects.filter(outcome="repeat").count() == 0


def test_key_validation_reserves_nothing_and_writes_no_record(ping):
    ping({"vendorKey": KEY})

    assert CallRecord.objects.count() == 0
    assert Reservation.objects.count() == 0


def test_the_ttl_is_configurable(ping, settings):
    settings.RESERVATION_TTL_SECONDS = 15

    data = ping({"vendorKey": KEY, "phoneNumber": "+14801234567"}).json()["data"]

    assert data["ttlSeconds"] == 15
    reservation = Reservation.objects.get()
    assert reservation.expires_at - reservation.created_at == timedelta(seconds=15)


def test_exactly_one_call_record_per_ping_that_passes_the_checks(ping):
    bodies = [
        {"vendorKey": KEY},  # key validation: none
        {"vendorKey": "bad", "phoneNumber": "+14801234567"},  # 401: none
        {"vendorKey": KEY, "phoneNumber": "bad"},  # 400: none
        {"vendorKey": KEY, "phoneNumber": "+14801234567", "stateCode": "XX"},  # 400: none
        {"vendorKey": KEY, "phoneNumber": "+14801234567"},  # reserved
        {"vendorKey": KEY, "phoneNumber": "+14801234567"},  # repeat
        {"vendorKey": KEY, "phoneNumber": "+12145550100"},  # rejected (TX)
    ]

    request_ids = [ping(body)["X-Request-ID"] for body in bodies]

    recorded = {str(r) for r in CallRecord.objects.values_list("request_id", flat=True)}
    assert recorded == set(request_ids[4:])


def test_the_service_answers_in_plain_python_and_the_view_in_the_contracts_words():
    # The service decides; camelCase and the timestamp's text belong to the view's rendering.
    now = timezone.now()
    request_id = str(uuid.uuid4())

    answer = vendor_ping(
        payload={"vendorKey": KEY, "phoneNumber": "+14805550100"},
        request_id=request_id,
        now=now,
    )
    validation = vendor_ping(payload={"vendorKey": KEY}, request_id=request_id, now=now)

    reservation = Reservation.objects.get()
    assert answer == PingAnswer(
        outcome="reserved",
        timestamp=now,
        transfer_target=str(reservation.transfer_number.number),
        ttl_seconds=60,
        agent_count=3,
    )
    assert validation == KeyValidation(vendor_active=True, authorized_states=["AZ", "CA"])
    assert ping_answer_data(answer, request_id) == {
        "agentAvailable": True,
        "transferTarget": answer.transfer_target,
        "ttlSeconds": 60,
        "agentCount": 3,
        "timestamp": format_timestamp(now),
        "requestId": request_id,
    }
