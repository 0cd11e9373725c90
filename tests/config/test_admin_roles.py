"""Who gets into the staff admin, and what each role may open there."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from calls.models import CallRecord
from routing.allocation import reservation_create
from routing.models import Agent, TransferNumber
from vendors.models import Vendor
from vendors.services import vendor_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(db):
    vendor = Vendor.objects.create(name="Acme Leads", authorized_states=["AZ"])
    vendor_key, _ = vendor_key_create(vendor=vendor, label="prod")
    agent = Agent.objects.create(name="Ada Agent", destination="sip:ada@example.com")
    agent.licenses.create(state="AZ")
    number = TransferNumber.objects.create(number="+18775703926")
    allocation = reservation_create(
        vendor=vendor, phone_number="+14805550100", state="AZ", ttl_seconds=60, now=timezone.now()
    )
    record = CallRecord.objects.create(
        vendor=vendor,
        phone_number="+14805550100",
        state="AZ",
        state_source="area_code",
        outcome="reserved",
        received_at=timezone.now(),
    )
    return {
        "vendor": vendor,
        "key": vendor_key,
        "agent": agent,
        "number": number,
        "reservation": allocation.reservation,
        "record": record,
    }


def operations_pages(rows):
    return [
        "/admin/",
        "/admin/vendors/vendor/",
        "/admin/vendors/vendor/add/",
        f"/admin/vendors/vendor/{rows['vendor'].pk}/change/",
        "/admin/vendors/vendorkey/",
        "/admin/vendors/vendorkey/add/",
        f"/admin/vendors/vendorkey/{rows['key'].pk}/change/",
        f"/admin/vendors/vendorkey/{rows['key'].pk}/rotate/",
        f"/admin/vendors/vendorkey/{rows['key'].pk}/revoke/",
        "/admin/vendors/vendorkeyevent/",
        "/admin/routing/agent/",
        "/admin/routing/agent/add/",
        f"/admin/routing/agent/{rows['agent'].pk}/change/",
        "/admin/routing/transfernumber/",
        "/admin/routing/transfernumber/add/",
        f"/admin/routing/transfernumber/{rows['number'].pk}/change/",
        "/admin/routing/reservation/",
        "/admin/routing/reservation/?held=all",
        f"/admin/routing/reservation/{rows['reservation'].pk}/change/",
    ]


def analyst_pages(rows):
    return [
        "/admin/",
        "/admin/calls/callrecord/",
        f"/admin/calls/callrecord/{rows['record'].pk}/change/",
        "/admin/calls/inboundcall/",
        "/admin/calls/dialattempt/",
        "/admin/calls/callexport/",
        "/admin/calls/callrecord/statement/",
        f"/admin/calls/callrecord/statement/?vendor={rows['vendor'].pk}&period=month",
        "/admin/calls/callrecord/scorecards/",
    ]


def test_the_migration_gives_each_role_exactly_its_permissions():
    def codenames(role):
        return {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=role).permissions.all()
        }

    assert codenames("Analysts") == {
        "calls.view_callrecord",
        "calls.export_callrecord",
        "calls.view_inboundcall",
        "calls.view_dialattempt",
        "calls.view_callexport",
        "calls.view_billingrule",
        "postbacks.view_postbackendpoint",
        "postbacks.view_postbackdelivery",
        "postbacks.view_postbackattempt",
    }
    operations = codenames("Operations")
    assert {"vendors.add_vendorkey", "vendors.change_vendorkey", "vendors.change_vendor"} <= (
        operations
    )
    assert {"routing.change_agent", "routing.add_transfernumber", "routing.change_reservation"} <= (
        operations
    )
    # Operations read call records to answer vendors and keep billing rules; exporting stays
    # with Analysts.
    assert {p for p in operations if p.startswith("calls.")} == {
        "calls.view_callrecord",
        "calls.view_inboundcall",
        "calls.view_dialattempt",
        *(f"calls.{action}_billingrule" for action in ("add", "change", "delete", "view")),
    }
    assert "vendors.delete_vendorkey" not in operations


def test_operations_keep_the_billing_rules_and_analysts_read_them(
    operations_client, analyst_client, rows
):
    add = "/admin/calls/billingrule/add/"
    assert operations_client.get(add).status_code == 200
    assert analyst_client.get(add).status_code == 403
    assert operations_client.get("/admin/calls/billingrule/").status_code == 200
    assert analyst_client.get("/admin/calls/billingrule/").status_code == 200


def test_it_opens_every_operations_page_for_an_operations_user(operations_client, rows):
    for url in operations_pages(rows):
        assert operations_client.get(url).status_code == 200, url


def test_it_opens_every_analyst_page_for_an_analyst(analyst_client, rows):
    for url in analyst_pages(rows):
        assert analyst_client.get(url).status_code == 200, url


def test_it_refuses_an_analyst_every_vendor_key_agent_number_and_reservation_page(
    analyst_client, rows
):
    for url in operations_pages(rows)[1:]:
        assert analyst_client.get(url).status_code == 403, url


def test_an_analyst_cannot_see_a_key_or_change_a_vendor(analyst_client, rows):
    response = analyst_client.post(
        f"/admin/vendors/vendor/{rows['vendor'].pk}/change/",
        {"name": "Renamed", "is_active": "on", "authorized_states": ["AZ"]},
    )
    assert response.status_code == 403
    assert Vendor.objects.get(pk=rows["vendor"].pk).name == "Acme Leads"
    response = analyst_client.post("/admin/vendors/vendorkey/add/", {"vendor": rows["vendor"].pk})
    assert response.status_code == 403
    assert rows["vendor"].keys.count() == 1
    index = analyst_client.get("/admin/").content.decode()
    assert "Vendor keys" not in index and "Call records" in index


def test_operations_read_call_records_but_export_none(operations_client, rows):
    record_pages = [page for page in analyst_pages(rows)[1:] if "/callexport/" not in page]
    for url in record_pages[:4]:  # the call records, one record, inbound calls, dial attempts
        assert operations_client.get(url).status_code == 200, url
    record_page = operations_client.get(f"/admin/calls/callrecord/{rows['record'].pk}/change/")
    assert b'name="_save"' not in record_page.content
    assert operations_client.get("/admin/calls/callexport/").status_code == 403
    assert operations_client.get("/admin/calls/callrecord/export/").status_code == 403
    listed = operations_client.get("/admin/calls/callrecord/").content.decode()
    assert "/admin/calls/callrecord/export/" not in listed


def test_call_records_stay_read_only_even_for_a_superuser(rows, superuser_client):
    client = superuser_client
    url = f"/admin/calls/callrecord/{rows['record'].pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(url, {"outcome": "completed"}).status_code == 403
    assert client.get("/admin/calls/callrecord/add/").status_code == 403
    assert CallRecord.objects.get(pk=rows["record"].pk).outcome == "reserved"


def test_it_keeps_a_staff_login_without_a_role_out_of_the_admin(make_staff):
    client = Client()
    client.force_login(make_staff("sam.staff"))
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.get("/admin/vendors/vendor/").status_code == 302


def test_a_role_member_can_log_in_with_the_password(make_staff):
    make_staff("olivia.ops", "Operations", password="correct horse battery staple")
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "olivia.ops", "password": "correct horse battery staple", "next": "/admin/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_it_locks_a_login_out_after_repeated_wrong_passwords(make_staff, settings):
    make_staff("olivia.ops", "Operations", password="correct horse battery staple")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/admin/login/", {"username": "olivia.ops", "password": "guess"})
        assert response.status_code == 200  # the login form again, with its error
    response = client.post("/admin/login/", {"username": "olivia.ops", "password": "guess"})
    assert response.status_code == 429
    # Locked: even the right password is refused now.
    response = client.post(
        "/admin/login/", {"username": "olivia.ops", "password": "correct horse battery staple"}
    )
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302
    attempt = AccessAttempt.objects.get(username="olivia.ops")
    assert attempt.failures_since_start >= settings.AXES_FAILURE_LIMIT


@pytest.fixture
def admin_at_ops_console(settings):
    import importlib

    from django.urls import clear_url_caches

    import config.urls

    settings.ADMIN_URL = "ops-console/"
    importlib.reload(config.urls)
    clear_url_caches()
    yield
    settings.ADMIN_URL = "admin/"
    importlib.reload(config.urls)
    clear_url_caches()


def test_the_admin_lives_where_the_admin_url_setting_says(admin_at_ops_console, make_staff):
    client = Client()
    client.force_login(make_staff("olivia.ops", "Operations"))
    assert client.get("/ops-console/").status_code == 200
    assert client.get("/ops-console/vendors/vendor/").status_code == 200
    assert client.get("/admin/").status_code == 404


def test_a_superuser_opens_every_admin_list_and_every_add_form_it_offers(rows, superuser_client):
    from django.contrib import admin

    client = superuser_client
    for model in admin.site._registry:
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        assert client.get(base).status_code == 200, base
        add = client.get(base + "add/").status_code
        assert add in (200, 403), base  # 403: the read-only pages offer no add


LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "correct horse battery staple"
WRONG_PASSWORD_MESSAGE = "Please enter the correct username and password for a staff account."


@pytest.mark.parametrize("role", ["Operations", "Analysts"])
def test_a_role_member_without_the_staff_flag_logs_in(role):
    user = User.objects.create_user("rita.role", password=PASSWORD, is_staff=False)
    user.groups.add(Group.objects.get(name=role))
    client = Client()

    response = client.post(
        LOGIN, {"username": "rita.role", "password": PASSWORD, "next": "/admin/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("is_staff", [True, False])
def test_a_login_without_a_role_is_told_what_is_missing_once_the_password_is_right(is_staff):
    User.objects.create_user("sam.staff", password=PASSWORD, is_staff=is_staff)
    client = Client()

    response = client.post(LOGIN, {"username": "sam.staff", "password": PASSWORD})

    assert response.status_code == 200
    text = response.content.decode()
    assert "sam.staff has no staff role" in text
    assert "Operations or Analysts" in text
    assert WRONG_PASSWORD_MESSAGE not in text
    assert client.get("/admin/").status_code == 302


def test_a_wrong_password_says_nothing_of_roles():
    User.objects.create_user("sam.staff", password=PASSWORD, is_staff=True)

    response = Client().post(LOGIN, {"username": "sam.staff", "password": "a guess"})

    text = response.content.decode()
    assert WRONG_PASSWORD_MESSAGE in text
    assert "staff role" not in text


def test_an_inactive_role_member_is_kept_out():
    user = User.objects.create_user("ivan.inactive", password=PASSWORD, is_active=False)
    user.groups.add(Group.objects.get(name="Operations"))
    client = Client()

    response = client.post(LOGIN, {"username": "ivan.inactive", "password": PASSWORD})

    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302
