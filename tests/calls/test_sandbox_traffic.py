"""Sandbox keys' call records are test traffic: the funnel, exports, the API and the admin list
leave them out unless asked for (`sandbox=include` or `sandbox=only`)."""

import csv
import io
from datetime import UTC, datetime

import pytest
from rest_framework.authtoken.models import Token

from calls.exports.reports import call_funnel_summary
from calls.models import CallExport, CallRecord

API_URL = "/api/v1/call-records"
EXPORT_URL = "/admin/calls/callrecord/export/"
LIST_URL = "/admin/calls/callrecord/"
FUNNEL_URL = "/admin/calls/callrecord/funnel/"
SINCE, UNTIL = datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 9, 2, tzinfo=UTC)


@pytest.fixture
def traffic(vendors, make_record) -> dict[str, CallRecord]:
    """Acme's live reserved ping and its sandbox ping, both on 2025-09-01."""
    acme = vendors["acme"]
    return {
        "live": make_record(acme, outcome=CallRecord.Outcome.RESERVED, phone_number="+14805551111"),
        "sandbox": make_record(
            acme,
            minutes=1,
            outcome=CallRecord.Outcome.RESERVED,
            phone_number="+14805550100",
            transfer_target="+18775550100",
            sandbox=True,
        ),
    }


@pytest.fixture
def as_analyst(api, analyst):
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=analyst).key}")
    return api


def test_live_traffic_is_the_one_line_selector_for_everything_that_counts(traffic):
    assert list(CallRecord.objects.live_traffic()) == [traffic["live"]]
    assert list(CallRecord.objects.sandbox_traffic()) == [traffic["sandbox"]]


def test_the_funnel_leaves_sandbox_pings_out_unless_asked(traffic):
    default = call_funnel_summary(since=SINCE, until=UNTIL)
    included = call_funnel_summary(since=SINCE, until=UNTIL, sandbox="include")
    alone = call_funnel_summary(since=SINCE, until=UNTIL, sandbox="only")

    assert (default.total.pings, default.total.reserved) == (1, 1)
    assert (included.total.pings, included.total.reserved) == (2, 2)
    assert (alone.total.pings, alone.total.reserved) == (1, 1)


def test_the_funnel_page_has_the_sandbox_choice(analyst_client, traffic):
    default = analyst_client.get(FUNNEL_URL, {"since": "2025-09-01", "until": "2025-09-01"})
    included = analyst_client.get(
        FUNNEL_URL, {"since": "2025-09-01", "until": "2025-09-01", "sandbox": "include"}
    )

    assert default.context["summary"].total.pings == 1
    assert included.context["summary"].total.pings == 2
    assert 'name="sandbox"' in default.content.decode()


def _api_request_ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["request_id"] for row in response.json()["results"]}


def test_the_api_leaves_sandbox_records_out_unless_asked(as_analyst, traffic):
    live, sandbox = str(traffic["live"].request_id), str(traffic["sandbox"].request_id)

    assert _api_request_ids(as_analyst.get(API_URL)) == {live}
    assert _api_request_ids(as_analyst.get(API_URL, {"sandbox": "exclude"})) == {live}
    assert _api_request_ids(as_analyst.get(API_URL, {"sandbox": "include"})) == {live, sandbox}
    only = as_analyst.get(API_URL, {"sandbox": "only"})
    assert only.json()["results"][0]["sandbox"] is True
    assert _api_request_ids(only) == {sandbox}
    # The audit row says which traffic was listed, and only when it was not the default.
    audits = list(CallExport.objects.order_by("pk").values_list("filters", flat=True))
    assert audits == [{}, {}, {"sandbox": "include"}, {"sandbox": "only"}]


def test_the_api_refuses_an_unknown_sandbox_choice(as_analyst, traffic):
    response = as_analyst.get(API_URL, {"sandbox": "yes"})

    assert response.status_code == 400
    assert response.json() == {
        "sandbox": ["Select a valid choice. yes is not one of the available choices."]
    }


def _csv_request_ids(response) -> set[str]:
    text = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    return {row["request_id"] for row in rows}


def test_the_api_csv_leaves_sandbox_records_out_unless_asked(as_analyst, traffic):
    live, sandbox = str(traffic["live"].request_id), str(traffic["sandbox"].request_id)

    assert _csv_request_ids(as_analyst.get(API_URL, {"format": "csv"})) == {live}
    both = as_analyst.get(API_URL, {"format": "csv", "sandbox": "include"})
    assert _csv_request_ids(both) == {live, sandbox}


def test_admin_exports_leave_sandbox_records_out_unless_asked(analyst_client, traffic):
    live, sandbox = str(traffic["live"].request_id), str(traffic["sandbox"].request_id)

    default = analyst_client.post(EXPORT_URL, {"format": "csv"})
    alone = analyst_client.post(EXPORT_URL, {"format": "csv", "sandbox": "only"})

    assert _csv_request_ids(default) == {live}
    text = b"".join(alone.streaming_content).decode("utf-8").lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(row["request_id"], row["sandbox"]) for row in rows] == [(sandbox, "true")]


def test_the_export_page_takes_the_lists_sandbox_choice(analyst_client, traffic):
    page = analyst_client.get(EXPORT_URL, {"sandbox": "include"})

    assert page.context["matching"] == 2
    assert page.context["listed"] == 2
    assert page.context["ignored"] == []


def _listed(client, query: dict | None = None) -> set[str]:
    page = client.get(LIST_URL, query or {})
    assert page.status_code == 200
    html = page.content.decode()
    return {str(r.request_id) for r in CallRecord.objects.all() if str(r.request_id) in html}


def test_the_admin_list_leaves_sandbox_records_out_unless_asked(analyst_client, traffic):
    live, sandbox = str(traffic["live"].request_id), str(traffic["sandbox"].request_id)

    assert _listed(analyst_client) == {live}
    assert _listed(analyst_client, {"sandbox": "include"}) == {live, sandbox}
    assert _listed(analyst_client, {"sandbox": "only"}) == {sandbox}
    # An unknown choice falls back to the default rather than showing test traffic.
    assert _listed(analyst_client, {"sandbox": "bogus"}) == {live}
    page = analyst_client.get(LIST_URL).content.decode()
    assert "By sandbox traffic" in page
    assert "Live traffic only" in page and "Sandbox traffic only" in page


def test_the_export_command_leaves_sandbox_records_out_unless_asked(traffic):
    from django.core.management import call_command

    def exported(*extra: str) -> set[str]:
        out = io.StringIO()
        call_command(
            "export_calls", "--since", "2025-09-01", "--until", "2025-09-01", "--format", "csv",
            *extra, stdout=out, stderr=io.StringIO(),
        )  # fmt: skip
        return {row["request_id"] for row in csv.DictReader(io.StringIO(out.getvalue()))}

    live, sandbox = str(traffic["live"].request_id), str(traffic["sandbox"].request_id)
    assert exported() == {live}
    assert exported("--sandbox", "include") == {live, sandbox}
    assert exported("--sandbox", "only") == {sandbox}
