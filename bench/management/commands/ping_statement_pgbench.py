"""A pgbench script of the ping's one statement (PostgreSQL), for `make bench`.

It runs exactly the statement a ping runs, for callers spread over every state, so pgbench can
measure what PostgreSQL alone spends on a ping, with no web server in the way.
"""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from calls.models import CallRecord
from calls.ping.consent import ConsentEvidence
from calls.ping.policies import PolicyInputs, policy_params
from calls.ping.service import ping_record_default_params, ping_statement
from routing.geography import AREA_CODE_STATES
from vendors.policies import vendor_policies_load
from vendors.services import VendorKeyInvalid, vendor_key_authenticate

# What pgbench computes per statement: a caller (random number, random state). The time is the
# database's own, as for a ping (`now` NULL).
_PHONE = "('+1555'||lpad(:n::text,7,'0'))"
_PER_STATEMENT = {
    "caller": _PHONE,
    "phone": _PHONE,
    "c_phone_number": _PHONE,
    "now": "NULL",
    "c_request_id": "gen_random_uuid()",
}


class Command(BaseCommand):
    help = "Print a pgbench script that runs the ping's statement (PostgreSQL only)."

    def add_arguments(self, parser):
        parser.add_argument("--vendor-key", required=True, help="a key authorized everywhere")
        parser.add_argument(
            "--policies",
            action="store_true",
            help="the vendor's own policies (open hours, consent given, its vendor-wide caps)",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The ping's one statement exists on PostgreSQL only.")
        try:
            vendor = vendor_key_authenticate(key=options["vendor_key"])
        except VendorKeyInvalid:
            raise CommandError("No usable vendor key like that.") from None
        states = sorted(set(AREA_CODE_STATES.values()))
        ttl = settings.RESERVATION_TTL_SECONDS
        values = {
            **{key: _literal(value) for key, value in ping_record_default_params().items()},
            **{
                key: _literal(value)
                for key, value in policy_params(
                    _vendor_wide_policies(vendor) if options["policies"] else None
                ).items()
            },
            **_PER_STATEMENT,
            "vendor": str(vendor.pk),
            "c_vendor_id": str(vendor.pk),
            "state": f"(ARRAY{states})[:s]",
            "c_state": f"(ARRAY{states})[:s]",
            "c_state_source": _literal(CallRecord.StateSource.AREA_CODE),
            "c_tracking": _literal(json.dumps({"source": "pgbench"})),
            "c_trustedform_cert_url": _literal(""),
            "c_jornaya_leadid": _literal(""),
            "ttl": str(ttl),
        }
        statement = ping_statement().sql
        for name, value in values.items():
            statement = statement.replace(f"%({name})s", value)
        if "%(" in statement:
            raise CommandError("A parameter of the statement has no value here.")
        self.stdout.write(f"\\set n random(1, 9999999)\n\\set s random(1, {len(states)})\n")
        self.stdout.write(statement + ";\n")


def _vendor_wide_policies(vendor) -> PolicyInputs:
    """The vendor's policies as a ping in open hours, with consent, meets them: do-not-call,
    duplicates and the vendor-wide caps checked (per-state caps are not)."""
    policies = vendor_policies_load(vendor)
    every, _ = policies.caps_for("")
    return PolicyInputs(
        evidence=ConsentEvidence(),
        consent_missing=False,
        closed_retry_after=None,
        policies=policies,
        cap_lock=policies.cap_lock_key(vendor_id=vendor.pk, state=""),
        every_state=every,
        this_state=None,
    )


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"
