"""US phone number normalization, area code → state lookup, and the caller's time zone.

Plain Python on purpose (no Django imports; the state list comes from vendors.states):
it runs on every routed call and is tested without a database or settings.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from vendors.states import STATES, InvalidStateCode, normalize_state_code

__all__ = [
    "AREA_CODE_STATES",
    "AREA_CODE_TIME_ZONES",
    "STATES",
    "STATE_TIME_ZONES",
    "InvalidPhoneNumber",
    "InvalidStateCode",
    "normalize_state_code",
    "normalize_us_phone",
    "state_for_phone",
    "time_zone_for_caller",
]

AREA_CODES_CSV = Path(__file__).with_name("data") / "area_codes.csv"
STATE_TIME_ZONES_CSV = Path(__file__).with_name("data") / "state_time_zones.csv"


class InvalidPhoneNumber(ValueError):
    """The value is not a US (or US territory) geographic phone number."""


def _load_area_codes(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="ascii") as handle:
        table = {row["area_code"]: row["state"] for row in csv.DictReader(handle)}
    # A row naming an unknown state would route calls nowhere: fail at import.
    unknown = sorted({state for state in table.values() if state not in STATES})
    if unknown:
        raise RuntimeError(f"{path.name} names unknown state codes: {unknown}")
    return table


AREA_CODE_STATES: dict[str, str] = _load_area_codes(AREA_CODES_CSV)


def _load_time_zones(path: Path, key: str) -> dict[str, str]:
    with path.open(newline="", encoding="ascii") as handle:
        return {row[key]: row["time_zone"] for row in csv.DictReader(handle)}


# IANA zones: an area code's is the zone most of its numbers are in (its state's main zone
# unless the table says otherwise); a state's is the zone most of its people are in.
AREA_CODE_TIME_ZONES: dict[str, str] = _load_time_zones(AREA_CODES_CSV, "area_code")
STATE_TIME_ZONES: dict[str, str] = _load_time_zones(STATE_TIME_ZONES_CSV, "state")


def time_zone_for_caller(e164: str, state: str, *, state_given: bool) -> str:
    """The IANA zone a caller's hours of operation are judged in: the state's main zone when
    the ping gave the state (stateCode), else the area code's zone."""
    if state_given:
        return STATE_TIME_ZONES[state]
    return AREA_CODE_TIME_ZONES.get(e164[2:5]) or STATE_TIME_ZONES[state]


# Separators people type between digit groups; removed before matching.
_SEPARATORS = str.maketrans("", "", " -.()")
# Optional +1 / 1 prefix, then a 10-digit NANP number whose area code starts 2-9.
# re.ASCII plus [0-9] keeps other scripts' digits (e.g. Arabic-Indic) out.
_NANP_RE = re.compile(r"(?:\+?1)?([2-9][0-9]{9})", re.ASCII)
_E164_RE = re.compile(r"\+1([2-9][0-9]{2})[0-9]{7}", re.ASCII)
# Cheap guard so a huge request field is refused before any work is done on it.
_MAX_INPUT_LENGTH = 64


def normalize_us_phone(value: object) -> str:
    """Return ``value`` as E.164 (``+1XXXXXXXXXX``) or raise InvalidPhoneNumber.

    Only the area code is checked, against AREA_CODE_STATES; exchange codes
    are deliberately left alone.
    """
    if not isinstance(value, str) or len(value) > _MAX_INPUT_LENGTH:
        raise InvalidPhoneNumber(f"not a US phone number: {value!r}")
    # fullmatch, not match + "$", so a trailing newline is refused too.
    match = _NANP_RE.fullmatch(value.translate(_SEPARATORS))
    if match is None or match[1][:3] not in AREA_CODE_STATES:
        raise InvalidPhoneNumber(f"not a US phone number: {value!r}")
    return "+1" + match[1]


def state_for_phone(e164: str) -> str:
    """Return the USPS state code for a number already normalized to E.164."""
    match = _E164_RE.fullmatch(e164) if isinstance(e164, str) else None
    state = AREA_CODE_STATES.get(match[1]) if match else None
    if state is None:
        raise InvalidPhoneNumber(f"not a normalized US phone number: {e164!r}")
    return state
