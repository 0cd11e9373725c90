"""Staff keep the do-not-call list in the admin: add and paste, upload a file (a bad line
refuses all of it, named), search, remove with a reason kept in the audit; who may do what."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from routing.models import DoNotCallChange, DoNotCallNumber

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/routing/donotcallnumber/"
ADD_URL = LIST_URL + "add/"
UPLOAD_URL = LIST_URL + "upload/"
HISTORY_URL = "/admin/routing/donotcallchange/"


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def upload(client, content: bytes, name="numbers.csv", **fields):
    return client.post(
        UPLOAD_URL,
        {"file": SimpleUploadedFile(name, content, content_type="text/csv"), **fields},
        follow=True,
    )


def test_it_adds_one_number_with_its_source_and_reason(operations_client):
    response = operations_client.post(
        ADD_URL,
        {"numbers": "(480) 555-0100", "source": "consumer call", "reason": "asked to stop"},
        follow=True,
    )
    assert "Added 1 number(s) to the do-not-call list." in text_of(response)
    row = DoNotCallNumber.objects.get()
    assert (row.number, row.source, row.reason, row.added_by.username) == (
        "+14805550100",
        "consumer call",
        "asked to stop",
        "olivia.ops",
    )
    assert DoNotCallChange.objects.get().detail == "one number"


def test_a_paste_with_a_bad_number_adds_none_and_names_it(operations_client):
    response = operations_client.post(ADD_URL, {"numbers": "4805550100\n480-555\n6025550101"})
    assert response.status_code == 200
    assert "Line 2: “480-555” is not a US phone number" in text_of(response)
    assert not DoNotCallNumber.objects.exists()


def test_a_file_with_a_bad_line_adds_nothing_then_the_fixed_file_adds_all(operations_client):
    DoNotCallNumber.objects.create(number="+16025550102", source="earlier")
    bad = b"number,source,reason\n4805550100,web,asked\n48O5550101,web,typo\n6025550102\n"

    refused = upload(operations_client, bad, source="state list")

    page = text_of(refused)
    assert "Nothing was added from numbers.csv:" in page
    assert "Line 3: “48O5550101” is not a US phone number" in page
    assert DoNotCallNumber.objects.count() == 1

    fixed = upload(
        operations_client,
        bad.replace(b"48O", b"480") + b"(480) 555-0100,again\n",
        source="state list",
        reason="state request",
    )

    page = text_of(fixed)
    assert "Added 2 number(s) to the do-not-call list." in page
    assert "1 already listed, kept as they were: +16025550102." in page
    assert "Line 5 repeats +14805550100 from line 2." in page
    assert list(DoNotCallNumber.objects.values_list("number", "source", "reason")) == [
        ("+14805550100", "web", "asked"),
        ("+14805550101", "web", "typo"),
        ("+16025550102", "earlier", ""),
    ]
    assert set(DoNotCallChange.objects.values_list("detail", flat=True)) == {"file numbers.csv"}


def test_an_upload_too_large_is_refused_before_it_is_read(operations_client, monkeypatch):
    monkeypatch.setattr("routing.admin_do_not_call.UPLOAD_MOST_BYTES", 10)
    response = upload(operations_client, b"4805550100\n6025550101\n")
    assert "The file is larger than 0 MB: split it." in text_of(response)
    assert not DoNotCallNumber.objects.exists()


def test_search_finds_a_number_in_any_spelling(operations_client):
    DoNotCallNumber.objects.create(number="+14805550100")
    DoNotCallNumber.objects.create(number="+16025550101")
    page = text_of(operations_client.get(LIST_URL, {"q": "480.555.0100"}))
    assert "+14805550100" in page and "+16025550101" not in page


def test_removal_asks_why_and_keeps_who_when_and_why(operations_client):
    row = DoNotCallNumber.objects.create(number="+14805550100", reason="asked")
    remove_url = f"{LIST_URL}{row.pk}/remove/"
    assert (
        f'href="{remove_url}"'
        in operations_client.get(f"{LIST_URL}{row.pk}/change/").content.decode()
    )

    refused = operations_client.post(remove_url, {"reason": ""})
    assert refused.status_code == 200 and "This field is required." in text_of(refused)
    assert DoNotCallNumber.objects.exists()

    response = operations_client.post(remove_url, {"reason": "listed by mistake"}, follow=True)

    assert "Removed 1 number(s) from the do-not-call list: +14805550100." in text_of(response)
    assert not DoNotCallNumber.objects.exists()
    change = DoNotCallChange.objects.get()
    assert (change.action, change.reason, change.actor.username) == (
        "removed",
        "listed by mistake",
        "olivia.ops",
    )
    history = text_of(operations_client.get(HISTORY_URL, {"q": "4805550100"}))
    assert "listed by mistake" in history and "olivia.ops" in history


def test_a_numbers_page_shows_its_history(operations_client):
    from datetime import UTC, datetime

    row = DoNotCallNumber.objects.create(number="+14805550100")
    DoNotCallChange.objects.create(
        number=row.number,
        action="added",
        reason="asked to stop",
        detail="file opt-outs.csv",
        at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )
    page = text_of(operations_client.get(f"{LIST_URL}{row.pk}/change/"))
    assert "added 2026-03-01 09:30 UTC by —: asked to stop (file opt-outs.csv)" in page


def test_the_remove_action_removes_the_selection_with_one_reason(operations_client):
    rows = [DoNotCallNumber.objects.create(number=f"+1480555010{n}") for n in range(3)]
    selection = {"action": "remove_numbers", "_selected_action": [rows[0].pk, rows[1].pk]}

    asked = operations_client.post(LIST_URL, {**selection, "index": "0"})
    assert asked.status_code == 200
    assert "+14805550100" in text_of(asked) and "+14805550102" not in text_of(asked)
    assert DoNotCallNumber.objects.count() == 3

    operations_client.post(LIST_URL, {**selection, "reason": "consent given again"})

    assert list(DoNotCallNumber.objects.values_list("number", flat=True)) == ["+14805550102"]
    assert DoNotCallChange.objects.filter(reason="consent given again").count() == 2


def test_nobody_deletes_a_listed_number_without_the_audit(operations_client, superuser_client):
    row = DoNotCallNumber.objects.create(number="+14805550100")
    for client in (operations_client, superuser_client):
        assert client.get(f"{LIST_URL}{row.pk}/delete/").status_code == 403
        assert "delete_selected" not in client.get(LIST_URL).content.decode()
        assert client.post(f"{LIST_URL}{row.pk}/change/", {"source": "x"}).status_code == 403
    assert DoNotCallNumber.objects.get().source == ""


def test_an_analyst_can_neither_see_nor_change_the_list(analyst_client):
    row = DoNotCallNumber.objects.create(number="+14805550100")
    for url in (LIST_URL, ADD_URL, UPLOAD_URL, f"{LIST_URL}{row.pk}/change/", HISTORY_URL):
        assert analyst_client.get(url).status_code == 403, url
    assert analyst_client.post(ADD_URL, {"numbers": "6025550101"}).status_code == 403
    assert upload(analyst_client, b"6025550101\n").status_code == 403
    assert analyst_client.post(f"{LIST_URL}{row.pk}/remove/", {"reason": "x"}).status_code == 403
    assert list(DoNotCallNumber.objects.values_list("number", flat=True)) == ["+14805550100"]
    assert not DoNotCallChange.objects.exists()


def test_operations_may_open_every_page_of_the_list(operations_client):
    row = DoNotCallNumber.objects.create(number="+14805550100")
    DoNotCallChange.objects.create(number=row.number, action="added")
    for url in (
        LIST_URL,
        ADD_URL,
        UPLOAD_URL,
        f"{LIST_URL}{row.pk}/change/",
        f"{LIST_URL}{row.pk}/remove/",
        HISTORY_URL,
    ):
        assert operations_client.get(url).status_code == 200, url


def test_the_migration_lets_operations_keep_the_list_and_analysts_not():
    from django.contrib.auth.models import Group

    def codenames(role):
        return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    keeping = {
        "add_donotcallnumber",
        "delete_donotcallnumber",
        "view_donotcallnumber",
        "view_donotcallchange",
    }
    assert keeping <= codenames("Operations")
    assert "change_donotcallnumber" not in codenames("Operations")
    assert not keeping & codenames("Analysts")
