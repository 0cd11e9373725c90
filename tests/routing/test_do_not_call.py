"""The do-not-call list's services: reading a paste or a CSV file (all or nothing, each bad line
named), adding (already listed and repeated numbers kept once), removing with its audit."""

import pytest

from routing.do_not_call import (
    PROBLEMS_SHOWN,
    DoNotCallEntry,
    DoNotCallInvalid,
    do_not_call_add,
    do_not_call_match,
    do_not_call_read_csv,
    do_not_call_read_text,
    do_not_call_remove,
)
from routing.models import DoNotCallChange, DoNotCallNumber

pytestmark = pytest.mark.django_db


def refusal(read, data) -> list[str]:
    with pytest.raises(DoNotCallInvalid) as refused:
        read(data=data)
    return refused.value.problems


def test_a_file_reads_numbers_in_any_spelling_with_their_own_source_and_reason():
    entries = do_not_call_read_csv(
        data=(
            "\ufeffPhone,Source,Reason\r\n"
            "(480) 555-0100,consumer call,asked to stop\r\n"
            "\r\n"
            "+1 602.555.0101,,\r\n"
            '"6025550102","state list","multi\nline reason"\r\n'
        ).encode()
    )
    assert entries == [
        DoNotCallEntry(2, "+14805550100", source="consumer call", reason="asked to stop"),
        DoNotCallEntry(4, "+16025550101"),
        DoNotCallEntry(6, "+16025550102", source="state list", reason="multi\nline reason"),
    ]


def test_a_file_without_a_header_is_number_source_reason():
    assert do_not_call_read_csv(data=b"4805550100,web form\n") == [
        DoNotCallEntry(line=1, number="+14805550100", source="web form")
    ]


def test_a_file_saved_with_semicolons_or_tabs_reads_the_same():
    for separator in (";", "\t"):
        data = f"Number{separator}Reason\n4805550100{separator}asked, twice\n".encode()
        assert do_not_call_read_csv(data=data) == [
            DoNotCallEntry(line=2, number="+14805550100", reason="asked, twice")
        ], separator


def test_a_header_may_put_the_number_column_anywhere():
    assert do_not_call_read_csv(data=b"reason,number\nlitigator,4805550100\n") == [
        DoNotCallEntry(line=2, number="+14805550100", reason="litigator")
    ]


def test_every_bad_line_of_a_file_is_named_and_nothing_is_read():
    problems = refusal(
        do_not_call_read_csv,
        b"number,source\n4805550100,ok\n555-0100,short\n,no number\n1234567890,bad area\n"
        + b"6025550101,"
        + b"s" * 101
        + b"\n",
    )
    assert problems == [
        "Line 3: “555-0100” is not a US phone number (10 digits, area code first, e.g. "
        "480-555-0100 or +14805550100).",
        "Line 4: no number in the number column.",
        "Line 5: “1234567890” is not a US phone number (10 digits, area code first, e.g. "
        "480-555-0100 or +14805550100).",
        "Line 6: the source is longer than 100 characters.",
    ]


def test_a_file_that_is_not_text_or_has_no_numbers_is_refused_saying_so():
    assert refusal(do_not_call_read_csv, b"4805550100\n\xff\xfe6025550101\n") == [
        "Line 2: not UTF-8 text. Save the file as “CSV UTF-8” and upload it again."
    ]
    assert refusal(do_not_call_read_csv, b"number,source\n\n") == ["The file has no numbers."]
    assert refusal(do_not_call_read_csv, b"4805550100\n\x006025550101") == [
        "Line 2: a NUL character; this is not a CSV file."
    ]


def test_a_refusal_names_the_first_lines_and_counts_the_rest():
    problems = refusal(do_not_call_read_csv, b"bad\n" * (PROBLEMS_SHOWN + 7))
    assert len(problems) == PROBLEMS_SHOWN + 1
    assert problems[-1] == "… and 7 more lines like these."


def test_a_file_beyond_a_pages_limits_is_refused_unless_the_command_reads_it(monkeypatch):
    monkeypatch.setattr("routing.do_not_call.UPLOAD_MOST_LINES", 2)
    data = b"4805550100\n4805550101\n4805550102\n"
    assert refusal(do_not_call_read_csv, data) == ["The file has more than 2 lines: split it."]
    assert len(do_not_call_read_csv(data=data, limited=False)) == 3


def test_a_paste_takes_lines_and_commas():
    entries = do_not_call_read_text(text="480 555 0100, 602-555-0101\n\n+16025550102")
    assert [(entry.line, entry.number) for entry in entries] == [
        (1, "+14805550100"),
        (1, "+16025550101"),
        (3, "+16025550102"),
    ]
    assert refusal(lambda data: do_not_call_read_text(text=data), " \n") == [
        "Give at least one number."
    ]


def test_adding_keeps_already_listed_and_repeated_numbers_once(superuser):
    DoNotCallNumber.objects.create(number="+14805550100", source="first", reason="kept")
    entries = do_not_call_read_csv(
        data=b"4805550100,again,ignored\n6025550101\n(602) 555-0101,second\n"
    )

    result = do_not_call_add(
        entries=entries, source="upload", reason="requested", actor=superuser, detail="file x.csv"
    )

    assert result.added == ["+16025550101"]
    assert result.already_listed == ["+14805550100"]
    assert result.repeated == [(3, "+16025550101", 2)]
    assert list(DoNotCallNumber.objects.values_list("number", "source", "reason", "added_by")) == [
        ("+14805550100", "first", "kept", None),
        ("+16025550101", "upload", "requested", superuser.pk),
    ]
    change = DoNotCallChange.objects.get()
    assert (change.number, change.action, change.actor, change.detail) == (
        "+16025550101",
        "added",
        superuser,
        "file x.csv",
    )


def test_removing_keeps_who_when_and_why(superuser):
    row = DoNotCallNumber.objects.create(number="+14805550100", source="web", reason="asked")

    assert do_not_call_remove(number_ids=[row.pk], reason="listed by mistake", actor=superuser) == [
        "+14805550100"
    ]

    assert not DoNotCallNumber.objects.exists()
    change = DoNotCallChange.objects.get()
    assert (change.number, change.action, change.reason, change.source, change.actor) == (
        "+14805550100",
        "removed",
        "listed by mistake",
        "web",
        superuser,
    )
    assert change.detail.endswith(": asked") and change.at is not None


def test_removing_without_a_reason_removes_nothing(superuser):
    row = DoNotCallNumber.objects.create(number="+14805550100")
    with pytest.raises(DoNotCallInvalid) as refused:
        do_not_call_remove(number_ids=[row.pk], reason="  ", actor=superuser)
    assert refused.value.problems == ["Say why the numbers come off the list: the audit keeps it."]
    assert DoNotCallNumber.objects.exists() and not DoNotCallChange.objects.exists()


def test_search_finds_a_number_in_any_spelling_or_words_of_its_source():
    DoNotCallNumber.objects.create(number="+14805550100", source="State of Arizona list")
    DoNotCallNumber.objects.create(number="+16025550101", reason="litigator")
    found = lambda term: list(  # noqa: E731
        DoNotCallNumber.objects.filter(do_not_call_match(term=term)).values_list(
            "number", flat=True
        )
    )
    assert found("(480) 555-0100") == ["+14805550100"]
    assert found("arizona") == ["+14805550100"]
    assert found("LITIGATOR") == ["+16025550101"]
    assert found("480555") == []


def test_the_command_adds_a_file_or_names_its_bad_lines(tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    bad = tmp_path / "opt-outs.csv"
    bad.write_text("4805550100\n480555\n")
    with pytest.raises(CommandError) as refused:
        call_command("do_not_call_import", str(bad), stdout=StringIO())
    assert str(refused.value).splitlines()[1] == (
        "Line 2: “480555” is not a US phone number (10 digits, area code first, e.g. "
        "480-555-0100 or +14805550100)."
    )
    assert not DoNotCallNumber.objects.exists()

    good = tmp_path / "fixed.csv"
    good.write_text("4805550100\n6025550101,,litigator\n4805550100\n")
    out = StringIO()
    call_command("do_not_call_import", str(good), "--source", "state list", stdout=out)
    assert out.getvalue().strip() == "Added 2; already listed 0; repeated lines 1."
    assert list(DoNotCallNumber.objects.values_list("number", "source", "reason")) == [
        ("+14805550100", "state list", ""),
        ("+16025550101", "state list", "litigator"),
    ]
    assert set(DoNotCallChange.objects.values_list("detail", flat=True)) == {
        "command, file fixed.csv"
    }
