"""Refused pings where staff look: the funnel counts them by reason; exports, the call-records
API and the admin's call records filter by reason and carry the consent evidence."""

import csv
import io
from datetime import UTC, datetime

from calls.exports.reports import FunnelRow, call_funnel_summary
from calls.models import CallRecord

Outcome = CallRecord.Outcome
FUNNEL_URL = "/admin/calls/callrecord/funnel/"
CERT = "https://cert.trustedform.com/" + "0123456789abcdef" * 2 + "01234567"
LEADID = "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"


def _refusals(vendors, make_record) -> dict[str, CallRecord]:
    acme, beta = vendors["acme"], vendors["beta"]
    return {
        "dnc": make_record(acme, outcome=Outcome.REFUSED, reason="do_not_call", minutes=1),
        "dnc2": make_record(beta, outcome=Outcome.REFUSED, reason="do_not_call", minutes=2),
        "closed": make_record(acme, outcome=Outcome.REFUSED, reason="closed", minutes=3),
        "consent": make_record(acme, outcome=Outcome.REFUSED, reason="consent_missing", minutes=4),
        "no_agent": make_record(acme, outcome=Outcome.NO_AGENT, reason="no_agent", minutes=5),
        "reserved": make_record(
            acme,
            outcome=Outcome.RESERVED,
            minutes=6,
            trustedform_cert_url=CERT,
            jornaya_leadid=LEADID,
        ),
    }


def test_the_funnel_counts_refused_pings_by_reason(vendors, make_record):
    _refusals(vendors, make_record)

    summary = call_funnel_summary(
        since=datetime(2025, 9, 1, tzinfo=UTC), until=datetime(2025, 9, 2, tzinfo=UTC)
    )

    assert summary.total == FunnelRow(
        "All",
        pings=6,
        reserved=1,
        no_agent=1,
        refused=4,
        refusals=(("closed", 1), ("do_not_call", 2), ("consent_missing", 1)),
    )
    assert summary.by_vendor[0].refusals == (
        ("closed", 1),
        ("do_not_call", 1),
        ("consent_missing", 1),
    )
    assert summary.by_vendor[1] == FunnelRow(
        "Beta Media", pings=1, refused=1, refusals=(("do_not_call", 1),)
    )


def test_the_funnel_page_shows_a_table_of_refusals_by_reason(analyst_client, vendors, make_record):
    _refusals(vendors, make_record)

    page = analyst_client.get(FUNNEL_URL, {"since": "2025-09-01", "until": "2025-09-01"})

    html = page.content.decode()
    assert '<table class="funnel" id="refused-by-reason">' in html
    assert (
        '<th>Vendor</th><th class="num">Refused</th><th class="num" title="closed">Closed (hours '
        'of operation)</th><th class="num" title="do_not_call">Do not call</th>'
        '<th class="num" title="consent_missing">Consent missing</th>'
    ) in html
    assert (
        '<td>Acme Leads</td><td class="num">3</td><td class="num">1</td><td class="num">1</td>'
        '<td class="num">1</td>'
    ) in html
    assert '<th>All</th><th class="num">4</th><th class="num">1</th><th class="num">2</th>' in html
    assert 'title="refused: 3"' in html  # the chart's segment


def test_the_funnel_page_says_when_nothing_was_refused(analyst_client, vendors, make_record):
    make_record(vendors["acme"], outcome=Outcome.RESERVED)
    page = analyst_client.get(FUNNEL_URL, {"since": "2025-09-01", "until": "2025-09-01"})
    assert b"No ping was refused by a policy in this period." in page.content


def _csv(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_an_export_selects_by_reason_and_carries_reason_and_consent(
    analyst_client, vendors, make_record
):
    made = _refusals(vendors, make_record)

    response = analyst_client.post(
        "/admin/calls/callrecord/export/", {"format": "csv", "reason": ["do_not_call", "closed"]}
    )
    rows = _csv(response)
    assert [(row["request_id"], row["outcome"], row["reason"]) for row in rows] == [
        (str(made[name].request_id), "refused", made[name].reason)
        for name in ("dnc", "dnc2", "closed")
    ]

    everything = _csv(analyst_client.post("/admin/calls/callrecord/export/", {"format": "csv"}))
    reserved = next(row for row in everything if row["outcome"] == "reserved")
    assert (reserved["trustedform_cert_url"], reserved["jornaya_leadid"]) == (CERT, LEADID)


def test_the_export_form_starts_from_the_lists_reason_filter(analyst_client, vendors, make_record):
    _refusals(vendors, make_record)
    page = analyst_client.get("/admin/calls/callrecord/export/", {"reason__exact": "do_not_call"})
    assert page.context["form"].filters().reasons == ("do_not_call",)
    assert page.context["matching"] == 2


def test_the_api_filters_by_reason_and_refuses_an_unknown_one(
    api, analyst_token, vendors, make_record
):
    made = _refusals(vendors, make_record)
    api.credentials(HTTP_AUTHORIZATION=f"Token {analyst_token}")

    response = api.get("/api/v1/call-records", {"reason": "consent_missing,CLOSED"})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(row["request_id"], row["reason"]) for row in results] == [
        (str(made["closed"].request_id), "closed"),
        (str(made["consent"].request_id), "consent_missing"),
    ]
    assert {"trustedform_cert_url", "jornaya_leadid"} <= set(results[0])

    refused = api.get("/api/v1/call-records", {"reason": "busy"})
    assert refused.status_code == 400
    assert refused.json() == {
        "reason": ["Select a valid choice. busy is not one of the available choices."]
    }


def test_the_admin_lists_filter_by_reason_and_search_consent_evidence(
    analyst_client, vendors, make_record
):
    made = _refusals(vendors, make_record)
    url = "/admin/calls/callrecord/"

    listed = analyst_client.get(url, {"reason__exact": "do_not_call"}).context["cl"].result_list
    assert {row.pk for row in listed} == {made["dnc"].pk, made["dnc2"].pk}

    for term in (CERT, LEADID, LEADID.lower()):
        found = analyst_client.get(url, {"q": term}).context["cl"].result_list
        assert [row.pk for row in found] == [made["reserved"].pk], term
    page = analyst_client.get(f"{url}{made['reserved'].pk}/change/").content.decode()
    assert CERT in page and LEADID in page


def test_the_export_command_selects_by_reason(vendors, make_record):
    from django.core.management import call_command

    made = _refusals(vendors, make_record)
    out = io.StringIO()
    call_command(
        "export_calls", "--since=2025-09-01", "--until=2025-09-01", "--reason=closed",
        "--reason=consent_missing", "--format=csv", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(row["request_id"], row["reason"]) for row in rows] == [
        (str(made["closed"].request_id), "closed"),
        (str(made["consent"].request_id), "consent_missing"),
    ]
