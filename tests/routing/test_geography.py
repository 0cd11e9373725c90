"""Tests for routing.geography: phone normalization and the area code table."""

from __future__ import annotations

import ast
import csv
import inspect

import phonenumbers
import pytest
from phonenumbers import geocoder, geodata

from routing import geography
from routing.geography import (
    AREA_CODE_STATES,
    STATES,
    InvalidPhoneNumber,
    InvalidStateCode,
    normalize_state_code,
    normalize_us_phone,
    state_for_phone,
)

TERRITORIES = {"PR", "VI", "GU", "AS", "MP"}
# libphonenumber spells these two differently from STATES.
_GEO_NAME_ALIASES = {"Washington State": "WA", "Washington D.C.": "DC"}
_STATE_BY_NAME = {name: code for code, name in STATES.items()} | _GEO_NAME_ALIASES
# Codes whose only geodata is city-level sub-prefixes (no area-code entry).
SUB_PREFIX_ONLY = {"203", "310", "713", "718"}


def _state_from_description(description: str) -> str | None:
    """Map a geocoder description ("Arizona", "New York, NY") to a state code."""
    if description in _STATE_BY_NAME:
        return _STATE_BY_NAME[description]
    _, comma, abbreviation = description.rpartition(",")
    abbreviation = abbreviation.strip()
    if comma and abbreviation in STATES and abbreviation not in TERRITORIES:
        return abbreviation
    return None


def _region(area_code: str) -> str | None:
    return phonenumbers.region_code_for_number(phonenumbers.parse(f"+1{area_code}2345678"))


def _area_code_description(area_code: str) -> str:
    # Exchange 000 never has a sub-prefix entry, so the geocoder falls back to
    # the area-code-level description, which exists even for invalid numbers.
    number = phonenumbers.parse(f"+1{area_code}0000000")
    return geocoder.description_for_valid_number(number, "en")


def _sub_prefix_states(area_code: str) -> set[str | None]:
    prefix = "1" + area_code
    return {
        _state_from_description(names["en"])
        for key, names in geodata.GEOCODE_DATA.items()
        if key.startswith(prefix) and len(key) > len(prefix) and "en" in names
    }


def _libphonenumber_state(area_code: str) -> str | None:
    region = _region(area_code)
    if region in TERRITORIES:
        return region
    if region != "US":
        return None
    description = _area_code_description(area_code)
    if description:
        return _state_from_description(description)
    states = _sub_prefix_states(area_code)
    return states.pop() if len(states) == 1 else None


# --- the area code table ----------------------------------------------------


def test_the_csv_is_sorted_unique_three_digit_codes_with_a_header() -> None:
    with geography.AREA_CODES_CSV.open(newline="", encoding="ascii") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["area_code", "state", "time_zone"]
    codes = [row[0] for row in rows[1:]]
    assert codes == sorted(set(codes))
    assert all(len(row) == 3 and len(row[0]) == 3 and row[0].isdigit() for row in rows[1:])
    assert len(AREA_CODE_STATES) == len(codes)


def test_every_area_code_agrees_with_libphonenumber() -> None:
    disagreements = {
        code: (state, _libphonenumber_state(code))
        for code, state in AREA_CODE_STATES.items()
        if _libphonenumber_state(code) != state
    }
    assert disagreements == {}


def test_the_table_holds_every_us_geographic_code_libphonenumber_knows() -> None:
    expected = {
        code: state
        for code in map(str, range(200, 1000))
        if (state := _libphonenumber_state(code)) is not None
    }
    # A newer phonenumbers release may know new overlays: add them to the CSV.
    assert expected == AREA_CODE_STATES


def test_sub_prefix_only_codes_take_their_state_from_city_entries() -> None:
    for code in SUB_PREFIX_ONLY:
        assert _area_code_description(code) == ""
        assert _sub_prefix_states(code) == {AREA_CODE_STATES[code]}


def test_the_table_covers_the_expected_codes() -> None:
    us_codes = [code for code, state in AREA_CODE_STATES.items() if state not in TERRITORIES]
    assert len(us_codes) >= 359
    assert len(AREA_CODE_STATES) >= 359 + 6
    expected = {
        "480": "AZ",
        "212": "NY",
        "213": "CA",
        "310": "CA",
        "713": "TX",
        "718": "NY",
        "203": "CT",
        "202": "DC",
        "787": "PR",
        "939": "PR",
        "340": "VI",
        "671": "GU",
        "670": "MP",
        "684": "AS",
    }
    assert {code: AREA_CODE_STATES.get(code) for code in expected} == expected


@pytest.mark.parametrize(
    "code",
    # Toll-free, Canadian, non-geographic, premium and Caribbean-nation codes.
    ["800", "888", "877", "866", "855", "844", "833", "416", "604", "500", "900", "876", "242"],
)
def test_the_table_excludes_non_us_and_non_geographic_codes(code: str) -> None:
    assert code not in AREA_CODE_STATES


def test_every_state_and_territory_has_an_area_code() -> None:
    assert set(AREA_CODE_STATES.values()) == set(STATES)


def test_states_lists_the_56_usps_codes_in_code_order() -> None:
    assert len(STATES) == 56
    assert list(STATES) == sorted(STATES)
    assert all(len(code) == 2 and code.isascii() and code.isupper() for code in STATES)
    assert TERRITORIES | {"DC", "AZ", "NY", "WY"} <= set(STATES)


def test_the_module_does_not_import_django() -> None:
    # It must stay importable (and testable) without Django settings.
    imported: set[str] = set()
    for node in ast.walk(ast.parse(inspect.getsource(geography))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not any(name.split(".")[0] == "django" for name in imported)


# --- normalize_us_phone -----------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "+14801234567",
        "14801234567",
        "4801234567",
        "+1 480 123 4567",
        "+1 (480) 123-4567",
        "1-480-123-4567",
        "480.123.4567",
        "(480) 123-4567",
        "+1.480.123.4567",
    ],
)
def test_it_accepts_the_guides_example_formats(value: str) -> None:
    assert normalize_us_phone(value) == "+14801234567"


def test_it_does_not_check_exchange_codes() -> None:
    assert normalize_us_phone("+14800234567") == "+14800234567"
    assert normalize_us_phone("4801114567") == "+14801114567"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+12125551234", "+12125551234"),
        ("(202) 555-1234", "+12025551234"),
        ("787 555 1234", "+17875551234"),
        ("1-684-555-1234", "+16845551234"),
        ("+1 671 555 1234", "+16715551234"),
    ],
)
def test_it_accepts_states_dc_and_territories(value: str, expected: str) -> None:
    assert normalize_us_phone(value) == expected


@pytest.mark.parametrize(
    "value",
    [4801234567, 14801234567, 4801234567.0, None, True, False, ["+14801234567"], b"4801234567"],
    ids=repr,
)
def test_it_refuses_values_that_are_not_strings(value: object) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalize_us_phone(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "---",
        "phone",
        "480-CALL-NOW",
        "480123456",  # too short
        "48012345678",  # too long
        "+148012345678",
        "114801234567",
        "\u0664\u0668\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667",  # Arabic-Indic
        "+1 \u066480 123 4567",
        "\uff14\uff18\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17",  # fullwidth digits
        "48+01234567",
        "1+4801234567",
        "++14801234567",
        "+4801234567",
        "+1 480 123 4567 ext 5",
        "4801234567\n",
        "\t4801234567",
        "480\u00a0123\u00a04567",  # non-breaking spaces are not separators
        "480/123/4567",
        "0801234567",
        "1801234567",
        "+44 20 7946 0958",
        "+442079460958",
        "+524801234567",
        "4" + " " * 100 + "801234567",
    ],
)
def test_it_refuses_malformed_numbers(value: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalize_us_phone(value)


@pytest.mark.parametrize(
    "value",
    [
        "+18001234567",
        "8881234567",
        "1-877-123-4567",
        "866 123 4567",
        "8551234567",
        "8441234567",
        "8331234567",
    ],
)
def test_it_refuses_toll_free_numbers(value: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalize_us_phone(value)


@pytest.mark.parametrize(
    "value",
    [
        "+14161234567",  # Toronto
        "6041234567",  # Vancouver
        "5141234567",  # Montreal
        "5001234567",  # personal communications
        "+19001234567",  # premium
        "5331234567",
        "8765551234",  # Jamaica
        "2425551234",  # Bahamas
        "8095551234",  # Dominican Republic
    ],
)
def test_it_refuses_canadian_caribbean_and_non_geographic_codes(value: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalize_us_phone(value)


def test_invalid_phone_number_is_a_value_error() -> None:
    assert issubclass(InvalidPhoneNumber, ValueError)


# --- state_for_phone --------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "state"),
    [
        ("+14801234567", "AZ"),
        ("+12125551234", "NY"),
        ("+17185551234", "NY"),
        ("+12135551234", "CA"),
        ("+12035551234", "CT"),
        ("+12025551234", "DC"),
        ("+17875551234", "PR"),
        ("+13405551234", "VI"),
        ("+16705551234", "MP"),
    ],
)
def test_state_for_phone_looks_up_the_area_code(e164: str, state: str) -> None:
    assert state_for_phone(e164) == state


def test_state_for_phone_agrees_with_normalize_for_every_area_code() -> None:
    for code, state in AREA_CODE_STATES.items():
        assert state_for_phone(normalize_us_phone(f"({code}) 555-0100")) == state


@pytest.mark.parametrize("value", ["4801234567", "+18001234567", "+1480123456", "", None])
def test_state_for_phone_refuses_numbers_that_are_not_normalized(value: object) -> None:
    with pytest.raises(InvalidPhoneNumber):
        state_for_phone(value)  # type: ignore[arg-type]


# --- normalize_state_code ---------------------------------------------------


def test_state_code_none_stays_none() -> None:
    assert normalize_state_code(None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("AZ", "AZ"), ("az", "AZ"), ("Az", "AZ"), ("dc", "DC"), ("pr", "PR"), ("Vi", "VI")],
)
def test_state_code_accepts_known_codes_in_any_case(value: str, expected: str) -> None:
    assert normalize_state_code(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", " AZ", "AZ ", "A", "AZZ", "ZZ", "Arizona", "12", 12, True, b"AZ", ["AZ"]],
    ids=repr,
)
def test_state_code_refuses_anything_else(value: object) -> None:
    with pytest.raises(InvalidStateCode):
        normalize_state_code(value)


def test_invalid_state_code_is_a_value_error() -> None:
    assert issubclass(InvalidStateCode, ValueError)


# --- time zones -------------------------------------------------------------


def test_every_area_code_and_state_has_a_time_zone_python_knows() -> None:
    from zoneinfo import ZoneInfo

    assert set(geography.AREA_CODE_TIME_ZONES) == set(AREA_CODE_STATES)
    assert set(geography.STATE_TIME_ZONES) == set(geography.STATES)
    for zone in {*geography.AREA_CODE_TIME_ZONES.values(), *geography.STATE_TIME_ZONES.values()}:
        ZoneInfo(zone)


@pytest.mark.parametrize(
    ("phone", "state", "given", "zone"),
    [
        ("+19155550100", "TX", False, "America/Denver"),  # El Paso: its area code's zone
        ("+19155550100", "TX", True, "America/Chicago"),  # stateCode given: the state's main zone
        ("+12145550100", "TX", False, "America/Chicago"),
        ("+14805550100", "AZ", False, "America/Phoenix"),
        ("+14805550100", "CA", True, "America/Los_Angeles"),
    ],
)
def test_a_callers_time_zone_is_the_area_codes_unless_the_state_was_given(
    phone, state, given, zone
) -> None:
    assert geography.time_zone_for_caller(phone, state, state_given=given) == zone
