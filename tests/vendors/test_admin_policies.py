"""Staff set a vendor's ping policies in the admin, and the operator's default hours: what is
saved, and what is refused with a message naming the row."""

import re
from datetime import date, time

import pytest
from django.contrib.admin.models import LogEntry

from tests.factories import VENDOR_FORM_NO_INLINE_ROWS, VendorFactory
from vendors.models import DuplicateScope, Holiday, OpeningHours, VendorCap, Weekday

pytestmark = pytest.mark.django_db

OPERATOR_HOURS_URL = "/admin/vendors/vendor/operator-hours/"


def vendor_form(vendor, *, caps=(), hours=(), holidays=(), **fields) -> dict:
    """The vendor page's post: its fields, and new rows for each policy table."""
    data = {
        "name": vendor.name,
        "is_active": "on",
        "authorized_states": vendor.authorized_states,
        **VENDOR_FORM_NO_INLINE_ROWS,
        **fields,
    }
    for prefix, rows in (("caps", caps), ("opening_hours", hours), ("holidays", holidays)):
        data[f"{prefix}-TOTAL_FORMS"] = str(len(rows))
        for index, row in enumerate(rows):
            data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def errors(response) -> list[str]:
    page = response.content.decode()
    return [
        re.sub(r"<[^>]+>", "", item).strip()
        for block in re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page, re.S)
        for item in re.findall(r"<li>(.*?)</li>", block, re.S)
    ]


def test_it_saves_every_policy_of_a_vendor(operations_client):
    vendor = VendorFactory(name="Acme Leads", authorized_states=["AZ", "TX"])
    response = operations_client.post(
        f"/admin/vendors/vendor/{vendor.pk}/change/",
        vendor_form(
            vendor,
            consent_required="on",
            duplicate_window_days="30",
            duplicate_scope="all_vendors",
            caps=[
                {"state": "", "most_at_once": "5", "most_per_hour": "40", "most_per_day": "300"},
                {"state": "TX", "most_per_day": "50"},
            ],
            hours=[
                {"weekday": "0", "opens": "09:00", "closes": "17:00"},
                {"weekday": "5", "opens": "10:00", "closes": "00:00"},
            ],
            holidays=[{"date": "2026-12-25", "name": "Christmas"}],
        ),
    )

    assert response.status_code == 302, errors(response)
    vendor.refresh_from_db()
    assert vendor.consent_required is True
    assert (vendor.duplicate_window_days, vendor.duplicate_scope) == (30, "all_vendors")
    assert list(
        VendorCap.objects.filter(vendor=vendor).values_list(
            "state", "most_at_once", "most_per_hour", "most_per_day"
        )
    ) == [("", 5, 40, 300), ("TX", None, None, 50)]
    assert list(
        OpeningHours.objects.filter(vendor=vendor).values_list("weekday", "opens", "closes")
    ) == [(Weekday.MONDAY, time(9), time(17)), (Weekday.SATURDAY, time(10), time(0))]
    assert list(Holiday.objects.filter(vendor=vendor).values_list("date", "name")) == [
        (date(2026, 12, 25), "Christmas")
    ]


def test_a_vendor_form_without_a_scope_keeps_this_vendors(operations_client):
    vendor = VendorFactory()
    response = operations_client.post(
        f"/admin/vendors/vendor/{vendor.pk}/change/", vendor_form(vendor, duplicate_window_days="7")
    )
    assert response.status_code == 302, errors(response)
    vendor.refresh_from_db()
    assert (vendor.duplicate_window_days, vendor.duplicate_scope) == (7, DuplicateScope.VENDOR)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"hours": [{"weekday": "0", "opens": "17:00", "closes": "09:00"}]},
            "Closes at 09:00, not after it opens at 17:00. For a period past midnight, add two "
            "rows: until 00:00, then from 00:00 the next day.",
        ),
        (
            {"hours": [{"weekday": "2", "opens": "09:00", "closes": "09:00"}]},
            "Closes at 09:00, not after it opens at 09:00.",
        ),
        (
            {
                "hours": [
                    {"weekday": "0", "opens": "09:00", "closes": "17:00"},
                    {"weekday": "0", "opens": "16:00", "closes": "20:00"},
                    {"weekday": "1", "opens": "16:00", "closes": "20:00"},
                ]
            },
            "Monday 09:00 to 17:00 overlaps Monday 16:00 to 20:00: make them one period or move "
            "one.",
        ),
        (
            {
                "hours": [
                    {"weekday": "4", "opens": "20:00", "closes": "00:00"},
                    {"weekday": "4", "opens": "22:00", "closes": "23:00"},
                ]
            },
            "Friday 20:00 to 00:00 overlaps Friday 22:00 to 23:00",
        ),
        (
            {"caps": [{"state": "", "most_at_once": "-1"}]},
            "Ensure this value is greater than or equal to 0.",
        ),
        (
            {"caps": [{"state": "AZ"}]},
            "Give at least one limit (at once, per hour or per day), or delete the row.",
        ),
        (
            {"caps": [{"state": "AZ", "most_per_day": "9"}, {"state": "AZ", "most_per_hour": "2"}]},
            "Two cap rows for AZ: keep one row per state (and one for all states).",
        ),
        (
            {"caps": [{"state": "NY", "most_per_day": "9"}]},
            "The vendor is not authorized for NY: a cap narrowed to it would never apply.",
        ),
        (
            {"holidays": [{"date": "2026-07-04"}, {"date": "2026-07-04", "name": "again"}]},
            "2026-07-04 is listed twice: one row a day.",
        ),
        (
            {"duplicate_window_days": "0"},
            "Give at least 1 day, or leave the field empty to turn the duplicate check off.",
        ),
        ({"duplicate_window_days": "-3"}, "Ensure this value is greater than or equal to 0."),
    ],
)
def test_it_refuses_a_policy_that_cannot_hold_saying_why(operations_client, policy, message):
    vendor = VendorFactory(authorized_states=["AZ"])
    response = operations_client.post(
        f"/admin/vendors/vendor/{vendor.pk}/change/", vendor_form(vendor, **policy)
    )
    assert response.status_code == 200
    assert any(message in error for error in errors(response)), errors(response)
    # Said once, in the form's words, not again by the model's constraints.
    assert not any(
        "onstraint" in error or "(00:00: midnight)" in error for error in errors(response)
    )
    vendor.refresh_from_db()
    assert vendor.duplicate_window_days is None
    assert not VendorCap.objects.exists()
    assert not OpeningHours.objects.exists()
    assert not Holiday.objects.exists()


def test_a_holiday_on_a_date_already_kept_is_refused_naming_the_date(operations_client):
    vendor = VendorFactory()
    kept = Holiday.objects.create(vendor=vendor, date=date(2026, 1, 1), name="New Year")
    data = vendor_form(vendor, holidays=[{"date": "2026-01-01", "name": "again"}])
    data |= {
        "holidays-TOTAL_FORMS": "2",
        "holidays-INITIAL_FORMS": "1",
        "holidays-1-date": "2026-01-01",
        "holidays-1-name": "again",
        "holidays-0-id": str(kept.pk),
        "holidays-0-date": "2026-01-01",
        "holidays-0-name": "New Year",
    }
    response = operations_client.post(f"/admin/vendors/vendor/{vendor.pk}/change/", data)
    assert response.status_code == 200
    assert errors(response) == ["2026-01-01 is listed twice: one row a day."]
    assert Holiday.objects.count() == 1


def test_an_analyst_can_neither_open_nor_change_a_vendors_policies(analyst_client):
    vendor = VendorFactory()
    page = f"/admin/vendors/vendor/{vendor.pk}/change/"
    assert analyst_client.get(page).status_code == 403
    response = analyst_client.post(
        page, vendor_form(vendor, caps=[{"state": "", "most_at_once": "1"}])
    )
    assert response.status_code == 403
    assert not VendorCap.objects.exists()
    assert analyst_client.get(OPERATOR_HOURS_URL).status_code == 403
    assert analyst_client.post(OPERATOR_HOURS_URL, {}).status_code == 403


def test_a_login_that_may_only_view_vendors_sees_the_policies_and_changes_none(make_staff):
    from django.contrib.auth.models import Permission
    from django.test import Client

    viewer = make_staff("vera.viewer", "Analysts")
    viewer.user_permissions.add(Permission.objects.get(codename="view_vendor"))
    client = Client()
    client.force_login(viewer)
    vendor = VendorFactory()
    VendorCap.objects.create(vendor=vendor, most_per_day=77)
    OpeningHours.objects.create(weekday=0, opens=time(8), closes=time(12))

    assert "77" in client.get(f"/admin/vendors/vendor/{vendor.pk}/change/").content.decode()
    page = client.get(OPERATOR_HOURS_URL)
    assert page.status_code == 200
    assert 'value="08:00"' in page.content.decode() and "disabled" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert client.post(OPERATOR_HOURS_URL, operator_form(hours=[])).status_code == 403


def operator_form(*, hours=(), holidays=(), existing_hours=(), existing_holidays=()) -> dict:
    data: dict = {}
    for prefix, rows, existing in (
        ("hours", hours, existing_hours),
        ("holidays", holidays, existing_holidays),
    ):
        every = [*({"id": row.pk} for row in existing), *rows]
        data[f"{prefix}-TOTAL_FORMS"] = str(len(every))
        data[f"{prefix}-INITIAL_FORMS"] = str(len(existing))
        for index, row in enumerate(every):
            if index < len(existing):
                row = {**_row_values(existing[index]), **row}
            data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def _row_values(row) -> dict:
    if isinstance(row, Holiday):
        return {"id": row.pk, "date": row.date.isoformat(), "name": row.name}
    return {
        "id": row.pk,
        "weekday": str(row.weekday),
        "opens": f"{row.opens:%H:%M}",
        "closes": f"{row.closes:%H:%M}",
    }


def test_the_operator_page_sets_the_default_schedule_and_holidays(operations_client):
    vendor = VendorFactory()
    OpeningHours.objects.create(vendor=vendor, weekday=0, opens=time(6), closes=time(7))
    page = operations_client.get(OPERATOR_HOURS_URL)
    assert page.status_code == 200
    assert 'value="06:00"' not in page.content.decode()  # a vendor's rows are not the operator's

    response = operations_client.post(
        OPERATOR_HOURS_URL,
        operator_form(
            hours=[{"weekday": str(day), "opens": "08:00", "closes": "20:00"} for day in range(5)],
            holidays=[{"date": "2026-11-26", "name": "Thanksgiving"}],
        ),
    )

    assert response.status_code == 302, errors(response)
    assert OpeningHours.objects.filter(vendor__isnull=True).count() == 5
    assert list(Holiday.objects.filter(vendor__isnull=True).values_list("date", "name")) == [
        (date(2026, 11, 26), "Thanksgiving")
    ]
    assert LogEntry.objects.filter(user__username="olivia.ops").count() == 6

    # Removing a row and refusing an overlap, on the same page.
    monday = OpeningHours.objects.get(vendor__isnull=True, weekday=0)
    thanksgiving = Holiday.objects.get()
    refused = operations_client.post(
        OPERATOR_HOURS_URL,
        operator_form(
            existing_hours=[monday],
            existing_holidays=[thanksgiving],
            hours=[{"weekday": "0", "opens": "19:00", "closes": "21:00"}],
        ),
    )
    assert refused.status_code == 200
    assert "Monday 08:00 to 20:00 overlaps Monday 19:00 to 21:00: make them one period or " in (
        " ".join(errors(refused))
    )
    removed = operations_client.post(
        OPERATOR_HOURS_URL,
        operator_form(
            existing_hours=[monday],
            existing_holidays=[thanksgiving],
            holidays=[],
        )
        | {"holidays-0-DELETE": "on"},
    )
    assert removed.status_code == 302, errors(removed)
    assert not Holiday.objects.exists()
    assert OpeningHours.objects.filter(vendor__isnull=True).count() == 5


def test_the_vendor_list_shows_each_vendors_policies_at_a_glance(operations_client):
    strict = VendorFactory(
        name="Strict Leads", consent_required=True, duplicate_window_days=30,
        duplicate_scope="all_vendors",
    )  # fmt: skip
    VendorCap.objects.create(vendor=strict, most_at_once=2)
    VendorCap.objects.create(vendor=strict, state="AZ", most_per_day=9)
    OpeningHours.objects.create(vendor=strict, weekday=0, opens=time(9), closes=time(17))
    Holiday.objects.create(vendor=strict, date=date(2026, 12, 25))
    VendorFactory(name="Open Leads")

    page = operations_client.get("/admin/vendors/vendor/").content.decode()

    assert (
        "consent required; duplicates 30 d (every vendor); caps: all states, AZ; own hours; "
        "1 holiday(s)"
    ) in page
    assert '<td class="field-policies">—</td>' in page


def test_the_operator_page_adds_a_years_federal_holidays_once(operations_client):
    Holiday.objects.create(date=date(2027, 7, 4), name="Fourth of July")

    response = operations_client.post(
        OPERATOR_HOURS_URL, {"year": "2027", "_add_federal": "1"}, follow=True
    )

    page = response.content.decode()
    assert "Added 14 US federal holiday(s) of 2027; 1 of its dates were listed already." in page
    days = dict(Holiday.objects.filter(vendor__isnull=True).values_list("date", "name"))
    assert days[date(2027, 11, 25)] == "Thanksgiving Day"
    assert days[date(2027, 7, 5)] == "Independence Day (observed)"
    assert days[date(2027, 7, 4)] == "Fourth of July"  # kept as it was
    again = operations_client.post(OPERATOR_HOURS_URL, {"year": "2027", "_add_federal": "1"})
    assert again.status_code == 302 and Holiday.objects.count() == 15
    refused = operations_client.post(
        OPERATOR_HOURS_URL, {"year": "1066", "_add_federal": "1"}, follow=True
    )
    assert "Choose a year from the list." in refused.content.decode()
    assert Holiday.objects.count() == 15
