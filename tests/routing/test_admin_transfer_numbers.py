"""Transfer numbers in the staff admin: paste many, refuse bad ones clearly, deactivate."""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.utils import timezone

from routing.allocation import reservation_create
from routing.models import Agent, TransferNumber
from vendors.models import Vendor

pytestmark = pytest.mark.django_db


def test_it_adds_every_pasted_number_in_e164(operations_client):
    response = operations_client.post(
        "/admin/routing/transfernumber/add/",
        {"numbers": "+18775703926\n+1 877 570 3927,  18775703928\n\n"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Added 3 transfer number(s)" in response.content.decode()
    assert list(TransferNumber.objects.values_list("number", flat=True)) == [
        "+18775703926",
        "+18775703927",
        "+18775703928",
    ]
    assert LogEntry.objects.filter(action_flag=ADDITION).count() == 3


def test_it_refuses_the_whole_paste_naming_each_bad_or_duplicate_number(operations_client):
    TransferNumber.objects.create(number="+18775703926")
    response = operations_client.post(
        "/admin/routing/transfernumber/add/",
        {"numbers": "+18775703926\n+18775703927\nnot-a-number\n+18775703927\n+1877"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "+18775703926 is already in the pool" in page
    assert "+18775703927 is given twice" in page
    assert "not-a-number is not a valid phone number in E.164 form" in page
    assert "+1877 is not a valid phone number in E.164 form" in page
    assert list(TransferNumber.objects.values_list("number", flat=True)) == ["+18775703926"]


def test_it_refuses_an_empty_paste(operations_client):
    response = operations_client.post("/admin/routing/transfernumber/add/", {"numbers": " \n "})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not TransferNumber.objects.exists()


def test_deactivated_numbers_are_handed_out_no_more(operations_client):
    one = TransferNumber.objects.create(number="+18775703926")
    response = operations_client.post(
        "/admin/routing/transfernumber/", {"action": "deactivate", "_selected_action": [one.pk]}
    )
    assert response.status_code == 302
    one.refresh_from_db()
    assert one.is_active is False
    assert not TransferNumber.objects.free(timezone.now()).exists()


def test_it_shows_which_numbers_are_held_now(operations_client):
    now = timezone.now()
    held = TransferNumber.objects.create(number="+18775703926")
    TransferNumber.objects.create(number="+18775703927", held_until=now)
    agent = Agent.objects.create(name="Ada", destination="sip:a@example.com")
    agent.licenses.create(state="AZ")
    vendor = Vendor.objects.create(name="Acme", all_states=True)
    allocation = reservation_create(
        vendor=vendor, phone_number="+14805550100", state="AZ", ttl_seconds=60, now=now
    )
    assert allocation.reservation.transfer_number == held

    page = operations_client.get("/admin/routing/transfernumber/").content.decode()
    assert page.count("held until") == 1
    assert f"held until {allocation.reservation.expires_at:%H:%M:%S}" in page
