"""The admin for the people who use it: what Operations and Analysts see on the call-record,
export, funnel and agent pages."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from calls.exports.forms import CallRecordFilters
from calls.exports.selectors import call_record_filters_describe, call_record_states_in_use
from calls.models import CallExport
from tests.factories import AgentFactory, CallRecordFactory, VendorFactory

pytestmark = pytest.mark.django_db
LIST_URL = "/admin/calls/callrecord/"
MOMENT = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def quoted_record():
    """The record a vendor's support question quotes."""
    return CallRecordFactory(
        vendor=VendorFactory(name="Sunrise Leads"),
        phone_number="+14805550142",
        state="TX",
        outcome="expired",
        ttl_seconds=60,
        received_at=MOMENT,
        tracking={"lead_id": "SL-77", "source": "facebook"},
    )


def test_operations_find_a_record_by_request_id_phone_or_lead_id(operations_client, quoted_record):
    CallRecordFactory(phone_number="+14805550999", tracking={"lead_id": "OTHER"})
    for term in [str(quoted_record.request_id), "(480) 555-0142", "SL-77"]:
        page = operations_client.get(LIST_URL, {"q": term}).content.decode()
        assert "+14805550142" in page and "+14805550999" not in page, term

    record = operations_client.get(f"{LIST_URL}{quoted_record.pk}/change/").content.decode()
    assert "SL-77" in record and 'name="_save"' not in record
    assert "Export these records" not in operations_client.get(LIST_URL).content.decode()


def test_times_are_written_one_way_with_their_zone_and_labels_in_words(
    operations_client, quoted_record
):
    listed = operations_client.get(LIST_URL).content.decode()
    assert "2025-09-01 12:00:00 UTC" in listed
    record = operations_client.get(f"{LIST_URL}{quoted_record.pk}/change/").content.decode()
    assert "2025-09-01 12:00:00 UTC" in record
    assert "TTL seconds:" in record and "Caller ID:" in record


def test_outcome_names_are_in_one_case_and_the_state_filter_lists_states_in_use(
    operations_client, quoted_record
):
    CallRecordFactory(state="AZ", outcome="no_agent")

    page = operations_client.get(LIST_URL).content.decode()

    assert call_record_states_in_use() == ["AZ", "TX"]
    state_filter = page[page.index("By state") : page.index("By outcome")]
    assert re.findall(r'state__exact=(\w\w)"', state_filter) == ["AZ", "TX"]
    outcome_filter = page[page.index("By outcome") :]
    assert ">no agent</a>" in outcome_filter and ">expired</a>" in outcome_filter
    assert ">Expired<" not in page


def test_view_site_leads_to_the_vendor_docs(operations_client):
    assert 'href="/docs/"' in operations_client.get(LIST_URL).content.decode()


def test_the_export_form_uses_the_admins_widgets(analyst_client, quoted_record):
    page = analyst_client.get("/admin/calls/callrecord/export/").content.decode()

    assert 'name="since" class="vDateField"' in page and 'name="until" class="vDateField"' in page
    assert re.search(r'name="vendor"[^>]*class="selectfilter" data-field-name="vendors"', page)
    assert re.search(r'name="state"[^>]*class="selectfilter" data-field-name="states"', page)
    assert 'type="checkbox" name="outcome" value="no_agent"' in page
    assert "/admin/jsi18n/" in page and "admin/js/SelectFilter2.js" in page
    assert ">Sunrise Leads</option>" in page


def test_an_xlsx_jobs_page_shows_its_filters_in_words(analyst_client, analyst, quoted_record):
    vendor = quoted_record.vendor
    filters = CallRecordFilters(
        since=MOMENT,
        until=MOMENT + timedelta(days=1),
        vendor_ids=(vendor.pk,),
        states=("TX",),
        outcomes=("no_agent",),
        search="SL-77",
    )
    export = CallExport.objects.create(
        requested_by=analyst, source="admin", filters=filters.as_json(), format="xlsx"
    )

    page = analyst_client.get(f"/admin/calls/callrecord/export/{export.pk}/").content.decode()

    described = dict(call_record_filters_describe(filters=filters))
    assert described == {
        "Received from": "2025-09-01 12:00:00 UTC",
        "Received before": "2025-09-02 12:00:00 UTC",
        "Vendors": "Sunrise Leads",
        "States": "TX",
        "Outcomes": "no agent",
        "Search": "“SL-77” (an exact request id, phone or lead_id)",
    }
    assert '<th scope="row">Vendors</th><td>Sunrise Leads</td>' in page
    assert "{&#x27;" not in page  # no raw JSON


def test_the_funnel_filters_by_vendor_trends_per_day_and_downloads_as_csv(analyst_client):
    sunrise, other = VendorFactory(name="Sunrise Leads"), VendorFactory(name="Other")
    for day, outcome in [(0, "completed"), (0, "expired"), (1, "completed"), (1, "no_agent")]:
        CallRecordFactory(vendor=sunrise, received_at=MOMENT + timedelta(days=day), outcome=outcome)
    CallRecordFactory(vendor=other, received_at=MOMENT, outcome="completed")
    query = {"since": "2025-09-01", "until": "2025-09-02", "vendor": sunrise.pk}

    page = analyst_client.get("/admin/calls/callrecord/funnel/", query)
    summary = page.context["summary"]
    assert [(row.label, row.pings, row.connected) for row in summary.by_day] == [
        ("2025-09-01", 2, 1),
        ("2025-09-02", 2, 1),
    ]
    assert [row.label for row in summary.by_vendor] == ["Sunrise Leads"]
    assert 'id="funnel-csv"' in page.content.decode()

    download = analyst_client.get("/admin/calls/callrecord/funnel/", {**query, "download": "csv"})
    assert download["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[0][:3] == ["section", "label", "pings"]
    # pings, reserved, repeats, no_agent, rejected, refused, connected, expired, transfer_rate
    assert ["day", "2025-09-01", "2", "2", "0", "0", "0", "0", "1", "1", "0.5000"] in rows
    assert rows[-1][:3] == ["total", "All", "4"]


def test_agents_are_listed_in_natural_order_and_filtered_by_what_they_do(operations_client):
    for name in ["TX 10", "TX 2", "TX 1", "AZ 3"]:
        AgentFactory(name=name, licensed_states=["TX"])
    AgentFactory(name="TX 7", licensed_states=["TX"], status="offline")

    page = operations_client.get("/admin/routing/agent/").content.decode()
    names = re.findall(r'<th class="field-name"><a [^>]*>([^<]+)</a>', page)
    assert names == ["AZ 3", "TX 1", "TX 2", "TX 7", "TX 10"]
    assert 'class="activity activity-free"' in page

    offline = operations_client.get("/admin/routing/agent/", {"doing": "offline"}).content.decode()
    assert re.findall(r'<th class="field-name"><a [^>]*>([^<]+)</a>', offline) == ["TX 7"]
    # The licence filter lists the states agents hold, not all 56.
    assert re.findall(r"licenses__state=(\w\w)", page) == ["TX"]


@pytest.mark.parametrize(
    "report, name",
    [("funnel", "Funnel"), ("scorecards", "Scorecards"), ("statement", "Statement"),
     ("export", "Export")],
)  # fmt: skip
def test_every_report_page_leads_back_to_the_calls_and_their_records(analyst_client, report, name):
    page = analyst_client.get(f"/admin/calls/callrecord/{report}/").content.decode()
    breadcrumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.S)[1]
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', breadcrumbs)
    assert links == [
        ("/admin/", "Home"),
        ("/admin/calls/", "Calls"),
        ("/admin/calls/callrecord/", "Call records"),
    ]
    assert breadcrumbs.rstrip().endswith(name)
