"""Reservations in the staff admin: what is held now, and releasing one early."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from routing.allocation import reservation_create
from routing.models import Agent, Reservation, TransferNumber
from vendors.models import Vendor

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(db):
    now = timezone.now()
    for index in range(2):
        agent = Agent.objects.create(name=f"Agent {index}", destination=f"sip:{index}@example.com")
        agent.licenses.create(state="AZ")
        TransferNumber.objects.create(number=f"+1877570392{index}")
    vendor = Vendor.objects.create(name="Acme", authorized_states=["AZ"])
    old = reservation_create(
        vendor=vendor,
        phone_number="+14805550199",
        state="AZ",
        ttl_seconds=60,
        now=now - timedelta(minutes=5),
    ).reservation
    Reservation.objects.filter(pk=old.pk).update(status="expired")
    return reservation_create(
        vendor=vendor, phone_number="+14805550100", state="AZ", ttl_seconds=60, now=now
    ).reservation


def test_it_opens_on_what_is_held_now_with_the_time_left(operations_client, live):
    page = operations_client.get("/admin/routing/reservation/").content.decode()
    assert "+14805550100" in page
    assert "+14805550199" not in page
    assert any(f">{seconds} s<" in page for seconds in (59, 60))

    everything = operations_client.get("/admin/routing/reservation/?held=all").content.decode()
    assert "+14805550199" in everything


def test_releasing_asks_for_a_reason_and_changes_nothing_without_one(operations_client, live):
    asked = operations_client.post(
        "/admin/routing/reservation/", {"action": "release", "_selected_action": [live.pk]}
    )
    assert asked.status_code == 200
    page = asked.content.decode()
    assert 'name="reason"' in page and "Release now" in page
    blank = operations_client.post(
        "/admin/routing/reservation/",
        {"action": "release", "_selected_action": [live.pk], "reason": "   "},
    )
    assert "This field is required." in blank.content.decode()
    live.refresh_from_db()
    assert live.status == "active"


def test_releasing_frees_the_agent_and_number_and_records_who_did_it(operations_client, live):
    response = operations_client.post(
        "/admin/routing/reservation/",
        {"action": "release", "_selected_action": [live.pk], "reason": "Vendor cancelled"},
    )
    assert response.status_code == 302
    live.refresh_from_db()
    assert live.status == "released"
    assert live.released_by.username == "olivia.ops"
    assert live.release_reason == "Vendor cancelled"
    now = timezone.now()
    assert Agent.objects.free(now).filter(pk=live.agent_id).exists()
    assert TransferNumber.objects.free(now).filter(pk=live.transfer_number_id).exists()
    assert LogEntry.objects.filter(
        object_id=str(live.pk), action_flag=CHANGE, user__username="olivia.ops"
    ).exists()

    again = operations_client.post(
        "/admin/routing/reservation/?held=all",
        {"action": "release", "_selected_action": [live.pk], "reason": "Again"},
        follow=True,
    )
    assert "Released 0 reservation(s); 1 had already ended." in again.content.decode()


def test_a_reservation_cannot_be_added_edited_or_deleted(operations_client, live):
    assert operations_client.get("/admin/routing/reservation/add/").status_code == 403
    assert operations_client.post(f"/admin/routing/reservation/{live.pk}/delete/").status_code == (
        403
    )
    page = operations_client.get(f"/admin/routing/reservation/{live.pk}/change/").content.decode()
    assert 'name="phone_number"' not in page
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    operations_client.post(
        f"/admin/routing/reservation/{live.pk}/change/", {"phone_number": "+14805550111"}
    )
    live.refresh_from_db()
    assert live.phone_number == "+14805550100"


def test_the_reservation_page_releases_it_with_the_reason_given(operations_client, live):
    change_url = f"/admin/routing/reservation/{live.pk}/change/"
    page = operations_client.get(change_url).content.decode()
    release_url = f"/admin/routing/reservation/{live.pk}/release/"
    assert release_url in page

    assert 'name="reason"' in operations_client.get(release_url).content.decode()
    refused = operations_client.post(release_url, {"reason": ""})
    assert "This field is required." in refused.content.decode()
    done = operations_client.post(release_url, {"reason": "Caller hung up on the vendor"})

    assert done.status_code == 302 and done["Location"] == change_url
    live.refresh_from_db()
    assert (live.status, live.release_reason, live.released_by.username) == (
        "released",
        "Caller hung up on the vendor",
        "olivia.ops",
    )
    after = operations_client.get(change_url).content.decode()
    assert release_url not in after  # nothing left to release
    assert "Caller hung up on the vendor" in after


def test_an_analyst_cannot_release_a_reservation(analyst_client, live):
    response = analyst_client.post(
        "/admin/routing/reservation/",
        {"action": "release", "_selected_action": [live.pk], "reason": "Nope"},
    )
    assert response.status_code == 403
    assert (
        analyst_client.post(
            f"/admin/routing/reservation/{live.pk}/release/", {"reason": "Nope"}
        ).status_code
        == 403
    )
    live.refresh_from_db()
    assert live.status == "active"
    live.refresh_from_db()
    assert live.status == "active"


def test_the_list_of_every_reservation_is_never_counted_in_full(operations_client, live):
    with CaptureQueriesContext(connection) as queries:
        page = operations_client.get("/admin/routing/reservation/?held=all&_facets=True")
    assert page.status_code == 200
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    html = page.content.decode()
    assert "+14805550199" in html and "+14805550100" in html
    assert "Page 1" in html and "Show counts" not in html


@pytest.mark.parametrize(
    "page", ["100000000000000000000", "9223372036854775807", "92233720368547758"]
)
def test_a_page_number_past_any_table_goes_back_to_the_list_as_django_does(
    operations_client, live, page
):
    response = operations_client.get(f"/admin/routing/reservation/?held=all&p={page}")
    assert response.status_code == 302
    assert response["Location"] == "/admin/routing/reservation/?e=1"
    assert "+14805550100" in operations_client.get(response["Location"]).content.decode()
