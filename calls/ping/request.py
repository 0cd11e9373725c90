"""Reading a vendor's ping body: the contract's checks, in the contract's order."""

import json
import math
from dataclasses import dataclass

from django.conf import settings
from rest_framework import serializers
from rest_framework.settings import api_settings

from config.errors import ApplicationError, BadBody, BodyTooLarge
from routing.geography import (
    InvalidPhoneNumber,
    normalize_us_phone,
    state_for_phone,
)
from vendors.states import InvalidStateCode, normalize_state_code

MESSAGE_BAD_PHONE = "Invalid phone number format. Please provide a valid US phone number."
MESSAGE_BAD_STATE = "Invalid state code. Please provide a valid two-letter US state code."
# Deeper tracking data than this is refused as a malformed body: deeper still and the JSON
# parser or encoder itself would run out of stack.
MAX_NESTING = 200


# The body's shape, described once: the docs (schema.py) show it, the reader reads these fields.
class PingRequestSerializer(serializers.Serializer):
    """The body of a ping. Any other field is tracking data, stored with the call record."""

    vendorKey = serializers.UUIDField(
        help_text="The key we issued you (8-4-4-4-12 hex, any letter case)."
    )
    phoneNumber = serializers.CharField(
        required=False,
        help_text=(
            "The caller, a US number: `+14801234567`, `14801234567` or `4801234567`; spaces, "
            "dashes, dots and parentheses are ignored. Leave it out to validate your key only."
        ),
    )
    stateCode = serializers.CharField(
        required=False,
        allow_null=True,
        min_length=2,
        max_length=2,
        help_text=(
            "The caller's two-letter USPS state code, any letter case. Overrides the area code "
            "when given; `null` is the same as leaving it out."
        ),
    )


# Every other field is the vendor's tracking data.
CONTRACT_FIELDS = frozenset(PingRequestSerializer().fields)


# Names a vendor may mean when it misspells a contract field, each compared without letter case
# and separators, and what they look like.
_LOOK_ALIKES = {
    "phonenumber": "phoneNumber",
    "phone": "phoneNumber",
    "statecode": "stateCode",
    "state": "stateCode",
    "vendorkey": "vendorKey",
}
_NAME_SEPARATORS = str.maketrans("", "", "_- .")


def look_alike_warnings(payload: dict) -> tuple[str, ...]:
    """A warning for each field that looks like a contract field but is not one (`phone_number`,
    `Phone`, `STATE_CODE`...): such a field is only tracking data, and a misspelled phone number
    turns a ping into a key validation."""
    warnings = []
    for name in payload:
        if name in CONTRACT_FIELDS or not isinstance(name, str) or len(name) > 32:
            continue
        meant = _LOOK_ALIKES.get(name.translate(_NAME_SEPARATORS).lower())
        if meant is not None:
            warnings.append(
                f"Field '{name}' is not part of the contract (did you mean '{meant}'?); "
                "it was stored as tracking data."
            )
    return tuple(warnings)


class InvalidPhone(ApplicationError):
    status = 400
    message = MESSAGE_BAD_PHONE


class InvalidState(ApplicationError):
    status = 400
    message = MESSAGE_BAD_STATE


@dataclass(frozen=True)
class PingFields:
    phone_number: str  # E.164
    state: str
    state_from_code: bool
    tracking: dict


def read_json_object(raw: bytes, content_length: int | None) -> dict:
    """The body as a dict, whatever the Content-Type says (some vendor tools send text/plain)."""
    limit = settings.PING_MAX_BODY_BYTES
    if (content_length is not None and content_length > limit) or len(raw) > limit:
        raise BodyTooLarge()
    try:
        payload = json.loads(
            raw, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_int
        )
    except (ValueError, RecursionError):
        raise BadBody() from None
    if not isinstance(payload, dict) or _nesting(payload) > MAX_NESTING:
        raise BadBody()
    return payload


def read_ping_fields(payload: dict) -> PingFields:
    """Phone, then state (the key was checked before): 400 for the first that is wrong."""
    try:
        phone_number = normalize_us_phone(payload["phoneNumber"])
    except InvalidPhoneNumber:
        raise InvalidPhone() from None
    try:
        state_code = normalize_state_code(payload.get("stateCode"))
    except InvalidStateCode:
        raise InvalidState() from None
    tracking = {
        _storable(key): _storable(value)
        for key, value in payload.items()
        if key not in CONTRACT_FIELDS
    }
    return PingFields(
        phone_number=phone_number,
        state=state_code or state_for_phone(phone_number),
        state_from_code=state_code is not None,
        tracking=tracking,
    )


def _refuse_constant(name: str):
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise.
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str):
    # 1e400 is valid JSON but overflows a float, and an infinite float is not storable as JSON:
    # keep such a number as the text the vendor sent.
    value = float(text)
    return value if math.isfinite(value) else text


def _int(text: str):
    # Python converts at most 4,300 digits to an int (sys.get_int_max_str_digits): keep a
    # longer number as the text the vendor sent, as above.
    try:
        return int(text)
    except ValueError:
        return text


def _nesting(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _storable(value):
    """Tracking data as sent, except what no database can hold: NUL and lone surrogates."""
    if isinstance(value, str):
        if value.isascii() and "\x00" not in value:
            return value
        return "".join(
            "\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in value
        )
    if isinstance(value, dict):
        return {_storable(key): _storable(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_storable(child) for child in value]
    return value


def client_address(meta) -> str | None:
    """The client's address as DRF's throttles read it with NUM_PROXIES (TRUSTED_PROXY_COUNT):
    with N trusted proxies in front, the N-th address from the end of X-Forwarded-For.

    Read from META: DRF's `get_ident` builds `request.headers` (every header of the request
    parsed) for one of them, a measurable part of a ping's Python (docs/performance.md).
    """
    proxies = api_settings.NUM_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not proxies or forwarded is None:
        return meta.get("REMOTE_ADDR") or None
    addresses = forwarded.split(",")
    return addresses[-min(proxies, len(addresses))].strip() or None


def request_body(request) -> bytes:
    """The body. Sent in chunks (no Content-Length), Django reads none of it; the server has
    de-chunked it into the input stream, read from there up to one byte past the limit."""
    meta = request.META
    if (
        not meta.get("CONTENT_LENGTH")
        and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        and meta.get("wsgi.input_terminated")
    ):
        return meta["wsgi.input"].read(settings.PING_MAX_BODY_BYTES + 1)
    return request.body


def content_length(meta) -> int | None:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0) or None
    except ValueError:
        return None
