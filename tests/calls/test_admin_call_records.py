"""Call records in the staff admin: read-only, searchable, filterable, never counted in full."""

import random
import string
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.contrib.admin import site
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.admin import CallRecordAdmin
from calls.models import CallRecord
from vendors.models import Vendor

pytestmark = pytest.mark.django_db
URL = "/admin/calls/callrecord/"


def record(vendor, **fields):
    values = {
        "vendor": vendor,
        "phone_number": "+14805550100",
        "state": "AZ",
        "state_source": "area_code",
        "outcome": "reserved",
        "received_at": timezone.now(),
        **fields,
    }
    return CallRecord.objects.create(**values)


@pytest.fixture
def acme(db):
    return Vendor.objects.create(name="Acme Leads", authorized_states=["AZ", "CA"])


@pytest.fixture
def zeta(db):
    return Vendor.objects.create(name="Zeta Leads", all_states=True)


def listed(client, query=""):
    page = client.get(URL + query)
    assert page.status_code == 200
    html = page.content.decode()
    return {r.request_id for r in CallRecord.objects.all() if str(r.request_id) in html}


def test_it_finds_a_record_by_request_id_phone_number_or_lead_id(analyst_client, acme):
    wanted = record(acme, phone_number="+14805550123", tracking={"lead_id": "L-778"})
    other = record(acme, phone_number="+14805550100", tracking={"lead_id": "L-779"})

    assert listed(analyst_client, f"?q={wanted.request_id}") == {wanted.request_id}
    assert listed(analyst_client, f"?q={str(wanted.request_id).upper()}") == {wanted.request_id}
    assert listed(analyst_client, "?q=(480) 555-0123") == {wanted.request_id}
    assert listed(analyst_client, "?q=%2B14805550123") == {wanted.request_id}
    assert listed(analyst_client, "?q=L-778") == {wanted.request_id}
    assert listed(analyst_client, "?q=L-77") == set()
    assert listed(analyst_client, f"?q={uuid.uuid4()}") == set()
    assert listed(analyst_client, "") == {wanted.request_id, other.request_id}


def test_it_filters_by_vendor_state_outcome_and_date(analyst_client, acme, zeta):
    now = timezone.now()
    az = record(acme, state="AZ", outcome="reserved", received_at=now)
    ca = record(acme, state="CA", outcome="no_agent", received_at=now)
    tx = record(zeta, state="TX", outcome="reserved", received_at=now - timedelta(days=40))

    assert listed(analyst_client, f"?vendor__id__exact={zeta.pk}") == {tx.request_id}
    assert listed(analyst_client, "?state__exact=CA") == {ca.request_id}
    assert listed(analyst_client, "?outcome__exact=reserved") == {az.request_id, tx.request_id}
    since = (now - timedelta(days=7)).date().isoformat()
    until = (now + timedelta(days=1)).date().isoformat()
    query = f"?received_at__gte={since}+00:00:00%2B00:00&received_at__lt={until}+00:00:00%2B00:00"
    assert listed(analyst_client, query) == {az.request_id, ca.request_id}


def test_it_shows_the_tracking_data_readably(analyst_client, acme):
    one = record(acme, tracking={"lead_id": "L-1", "source": "fb", "ad": {"id": 7}})
    page = analyst_client.get(f"{URL}{one.pk}/change/").content.decode()
    assert "&quot;ad&quot;: {\n    &quot;id&quot;: 7\n  }" in page
    assert "&quot;lead_id&quot;: &quot;L-1&quot;" in page
    assert 'name="tracking"' not in page


def test_it_pages_without_counting_the_whole_table(analyst_client, acme):
    now = timezone.now()
    CallRecord.objects.bulk_create(
        CallRecord(
            vendor=acme,
            phone_number="+14805550100",
            state="AZ",
            state_source="area_code",
            outcome="reserved",
            received_at=now - timedelta(seconds=i),
        )
        for i in range(150)
    )
    with CaptureQueriesContext(connection) as queries:
        first = analyst_client.get(URL)
    assert first.status_code == 200
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    html = first.content.decode()
    assert html.count('class="field-request_id_short"') == 100
    assert 'href="?p=2"' in html
    assert 'href="?p=3"' not in html

    second = analyst_client.get(URL + "?p=2").content.decode()
    assert second.count('class="field-request_id_short"') == 50
    assert 'href="?p=3"' not in second
    assert 'href="?p=1" class="prev"' in second
    assert analyst_client.get(URL + "?p=9").status_code in (200, 302)

    # The export page, and only it, counts what the list selects, to compare with its own.
    export = analyst_client.get("/admin/calls/callrecord/export/")
    assert (export.context["listed"], export.context["matching"]) == (150, 150)

    # Counts per filter choice ("Show counts") would scan the table too: never offered.
    with CaptureQueriesContext(connection) as queries:
        faceted = analyst_client.get(URL + "?_facets=True")
    assert faceted.status_code == 200
    assert "Show counts" not in faceted.content.decode()
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.postgres
def test_the_lead_id_search_uses_its_index_on_postgresql(acme):
    record(acme, tracking={"lead_id": "L-1"})
    queryset, _ = CallRecordAdmin(CallRecord, site).get_search_results(
        None, CallRecord.objects.all(), "L-1"
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = queryset.explain()
    assert "callrecord_lead_id" in plan
    assert list(queryset) == list(CallRecord.objects.filter(tracking__lead_id="L-1"))


def test_it_finds_a_record_by_a_lead_id_longer_than_an_index_entry(analyst_client, acme):
    lead_id = "L-" + "".join(random.Random(3).choices(string.ascii_letters, k=5000))
    wanted = record(acme, tracking={"lead_id": lead_id})
    record(acme, tracking={"lead_id": lead_id[:-1]})

    assert listed(analyst_client, f"?q={lead_id}") == {wanted.request_id}


@pytest.mark.parametrize(
    "page", ["100000000000000000000", "9223372036854775807", "92233720368547758"]
)
def test_a_page_number_past_any_table_goes_back_to_the_list_as_django_does(
    analyst_client, acme, page
):
    record(acme)
    response = analyst_client.get(f"{URL}?p={page}")
    assert response.status_code == 302
    assert response["Location"] == f"{URL}?e=1"
    assert analyst_client.get(response["Location"]).status_code == 200
    # Asked again with the error flag, Django's own "Database error" page, not a crash.
    again = analyst_client.get(f"{URL}?p={page}&e=1")
    assert again.status_code == 200
    assert "Database error" in again.content.decode()


@pytest.mark.parametrize("term", ["\x00", "L-1\x00", "+1480555\x000100"])
def test_a_search_term_with_a_nul_character_matches_nothing(analyst_client, acme, term):
    record(acme, phone_number="+14805550100", tracking={"lead_id": "L-1"})
    queryset, _ = CallRecordAdmin(CallRecord, site).get_search_results(
        None, CallRecord.objects.all(), term
    )
    assert list(queryset) == []  # PostgreSQL refuses NUL in a text parameter: never sent

    # Through the pages, Django's search form refuses it first and says so.
    for path in ("", "export/"):
        page = analyst_client.get(f"{URL}{path}?q={quote(term)}")
        assert page.status_code == 200
        assert "Null characters are not allowed." in page.content.decode()
