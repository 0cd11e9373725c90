"""GET /api/v1/vendor/calls: a vendor's own call records, for settling with us.

Authenticated by the vendor key as `Authorization: Bearer <key>`, through the same lookup and
per-key rate limit as pings; errors in the contract's envelope; DRF's cursor pagination.
"""

from datetime import UTC, datetime, time

from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from calls.models import CallRecord
from calls.ping.request import client_address
from calls.postbacks.events import record_settlement_json
from calls.timestamps import format_timestamp
from calls.vendor_api.schema import VENDOR_CALLS_SCHEMA
from calls.vendor_api.selectors import vendor_call_records
from config.errors import ApplicationError, FirstRendererNegotiation, envelope_data, request_id_of
from vendors.services import VendorKeyInvalid, vendor_key_admit

PARAMETERS = {"since", "until", "outcome", "cursor", "page_size"}
MESSAGE_METHOD_GET = "Method not allowed. Use GET."


class BadQuery(ApplicationError):
    status = 400


class BearerKeyMissing(VendorKeyInvalid):
    headers = {"WWW-Authenticate": 'Bearer realm="vendor"'}


class VendorCallsPagination(CursorPagination):
    ordering = ("-received_at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise BadQuery(
                "Invalid cursor: follow the next and previous links as they are."
            ) from None


class VendorCallsView(APIView):
    http_method_names = ["get"]
    authentication_classes = []
    permission_classes = []
    content_negotiation_class = FirstRendererNegotiation

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise ApplicationError(MESSAGE_METHOD_GET, status=405)

    @VENDOR_CALLS_SCHEMA
    def get(self, request):
        key = bearer_key(request.META.get("HTTP_AUTHORIZATION", ""))
        admitted = vendor_key_admit(key=key, client=client_address(request.META))
        params = request.query_params
        unknown = sorted(set(params) - PARAMETERS)
        if unknown:
            raise BadQuery(f"Unknown parameter: {unknown[0]}. Use {', '.join(sorted(PARAMETERS))}.")
        since, until = query_moment(params, "since"), query_moment(params, "until")
        if since and until and since >= until:
            raise BadQuery("since must be before until.")
        page_size = params.get("page_size")
        if page_size is not None and not (page_size.isdigit() and 1 <= int(page_size) <= 500):
            raise BadQuery("Invalid page_size: a whole number from 1 to 500.")
        records = vendor_call_records(
            vendor_id=admitted.vendor.pk,
            sandbox=admitted.sandbox,  # a sandbox key reads only its sandbox records
            since=since,
            until=until,
            outcomes=query_outcomes(params),
        )
        paginator = VendorCallsPagination()
        page = paginator.paginate_queryset(records, request, view=self)
        data = {
            "results": [vendor_call_json(record) for record in page or []],
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            "requestId": request_id_of(request),
        }
        return Response(envelope_data(200, data))


def bearer_key(header: str) -> str:
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise BearerKeyMissing()
    return key.strip()


def query_moment(params, name: str) -> datetime | None:
    """An ISO-8601 time (UTC unless it says otherwise) or date (its UTC midnight)."""
    value = params.get(name)
    if value is None:
        return None
    try:
        moment = parse_datetime(value.replace(" ", "+"))  # a + left unescaped in a query
        if moment is None and (day := parse_date(value)) is not None:
            moment = datetime.combine(day, time(0), tzinfo=UTC)
    except ValueError:
        moment = None
    if moment is None:
        raise BadQuery(
            f"Invalid {name}: use an ISO-8601 time or date, "
            "e.g. 2025-09-19T17:45:23Z or 2025-09-19."
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def query_outcomes(params) -> list[str] | None:
    value = params.get("outcome")
    if value is None:
        return None
    outcomes = [item.strip() for item in value.split(",")]
    unknown = [item for item in outcomes if item not in CallRecord.Outcome.values]
    if unknown or not outcomes:
        raise BadQuery(
            f"Invalid outcome: {unknown[0] if unknown else value!r}. "
            f"Use one or more of {', '.join(CallRecord.Outcome.values)}, separated by commas."
        )
    return outcomes


def vendor_call_json(record: CallRecord) -> dict:
    """One record as the vendor API shows it."""
    return {
        "requestId": str(record.request_id),
        "receivedAt": format_timestamp(record.received_at),
        "phoneNumber": record.phone_number,
        "state": record.state,
        "tracking": record.tracking,
        "outcome": record.outcome,
        "transferTarget": record.transfer_target or None,
        "arrival": getattr(record, "arrival", None),
        "unmatchedCalls": getattr(record, "unmatched_calls", 0),
        "connectedAt": format_timestamp(record.connected_at) if record.connected_at else None,
        "endedAt": format_timestamp(record.ended_at) if record.ended_at else None,
        "talkTimeSeconds": record.duration_seconds,
        "callerIdMatch": record.caller_id_matches,
        **record_settlement_json(record),
    }
