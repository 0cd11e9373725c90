"""Consent evidence a ping carries: a TrustedForm certificate URL or a Jornaya LeadiD.

Read from the documented fields of the body (they stay in the tracking data as well), kept on the
call record when well formed, and required of vendors with `consent_required`. Nothing here
calls those services: PING_CONSENT_VERIFIER names the ConsentVerifier that decides, and the
default one accepts any well-formed evidence. A verifier that claims the certificate or checks
the LeadiD with its provider plugs in there.
"""

import functools
import re
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from vendors.models import Vendor

# The documented field names, first found first used.
TRUSTEDFORM_FIELDS = ("xxTrustedFormCertUrl", "trusted_form_cert_url")
JORNAYA_FIELDS = ("jornaya_leadid", "universal_leadid", "leadid_token")

# Only this host: a verifier must never send credentials to a URL a vendor made up.
_TRUSTEDFORM_URL = re.compile(r"https://cert\.trustedform\.com/[0-9a-f]{40}", re.ASCII | re.I)
_JORNAYA_LEADID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.I
)


@dataclass(frozen=True)
class ConsentEvidence:
    """The well-formed evidence of a ping ("" where none)."""

    trustedform_cert_url: str = ""
    jornaya_leadid: str = ""

    def __bool__(self) -> bool:
        return bool(self.trustedform_cert_url or self.jornaya_leadid)


def consent_evidence(body: dict) -> ConsentEvidence:
    """The first well-formed value of each kind's fields; malformed values count as absent."""
    return ConsentEvidence(
        trustedform_cert_url=_first_match(body, TRUSTEDFORM_FIELDS, _TRUSTEDFORM_URL),
        jornaya_leadid=_first_match(body, JORNAYA_FIELDS, _JORNAYA_LEADID),
    )


def _first_match(body: dict, names: tuple[str, ...], pattern: re.Pattern) -> str:
    for name in names:
        value = body.get(name)
        if isinstance(value, str) and pattern.fullmatch(value.strip()):
            return value.strip()
    return ""


class ConsentVerifier(Protocol):
    """Decides whether a ping's evidence is consent enough for a vendor that requires it."""

    def verify(self, evidence: ConsentEvidence, *, vendor: Vendor) -> bool: ...


class WellFormedConsentVerifier:
    """The default: evidence that is well formed is enough; no outbound call."""

    def verify(self, evidence: ConsentEvidence, *, vendor: Vendor) -> bool:
        return bool(evidence)


@functools.cache
def _verifier(path: str) -> ConsentVerifier:
    return import_string(path)()


def consent_verifier() -> ConsentVerifier:
    return _verifier(settings.PING_CONSENT_VERIFIER)
