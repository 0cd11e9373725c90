"""Where an agent's calls are connected: a phone number stored in E.164, or a `sip:` address.

Staff type numbers as people write them; the carrier dials E.164. A US number is read with the
project's NANP rule (routing.geography: separators dropped, any exchange, a US geographic area
code), so a fictional 555-01XX desk number is kept; any other number (toll-free, Canada, abroad)
must be one libphonenumber calls valid.
"""

import re

import phonenumbers

from routing.geography import InvalidPhoneNumber, normalize_us_phone

DESTINATION_HELP = (
    "Where a call is connected: a phone number, stored in E.164 (+13055550199; "
    "(305) 555-0199 is saved as that), or a SIP address such as sip:ada@example.com."
)
INVALID_DESTINATION = (
    "Enter a phone number, e.g. +13055550199 or (305) 555-0199, or a SIP address such as "
    "sip:ada@example.com."
)

# sip:user@host, with optional ;parameters: no spaces, quotes or angle brackets.
_SIP_RE = re.compile(r"sip:[^\s@<>\"]+@[^\s@<>\"]+", re.ASCII | re.IGNORECASE)
_SEPARATORS = str.maketrans("", "", " -.()")
_MAX_LENGTH = 255


class InvalidDestination(ValueError):
    """Neither a phone number nor a sip: address."""


def normalize_destination(value: object) -> str:
    """The destination to store for `value` (E.164 or `sip:…`); InvalidDestination if none."""
    if not isinstance(value, str) or len(value.strip()) > _MAX_LENGTH:
        raise InvalidDestination(INVALID_DESTINATION)
    text = value.strip()
    if text[:4].lower() == "sip:":
        if not _SIP_RE.fullmatch(text):
            raise InvalidDestination(INVALID_DESTINATION)
        return "sip:" + text[4:]  # the scheme in lower case: telephony dials sip: as SIP
    try:
        return normalize_us_phone(text)
    except InvalidPhoneNumber:
        pass
    digits = text.translate(_SEPARATORS)
    if not re.fullmatch(r"\+?[0-9]{7,15}", digits, re.ASCII):
        raise InvalidDestination(INVALID_DESTINATION)
    try:
        number = phonenumbers.parse(digits, None if digits.startswith("+") else "US")
    except phonenumbers.NumberParseException:
        raise InvalidDestination(INVALID_DESTINATION) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidDestination(INVALID_DESTINATION)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
