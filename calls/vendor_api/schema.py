"""The vendor API's OpenAPI description, beside the ping's (calls/ping/schema.py): only metadata
for /api/schema/ and /docs/, in the contract's envelope."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers

from calls.models import CallRecord
from calls.ping.schema import (
    EXAMPLE_REQUEST_ID,
    EXAMPLE_TIMESTAMP,
    _envelope,
    _error_example,
    _example,
    _message,
    _request_id,
)
from config.errors import MESSAGE_TOO_MANY, MESSAGE_UNEXPECTED
from vendors.services import MESSAGE_BAD_KEY


def _nullable_time(help_text: str) -> serializers.Field:
    return serializers.DateTimeField(allow_null=True, help_text=help_text)


_PAYOUT = {"amount": "25.00", "currency": "USD"}
EXAMPLE_CALL = {
    "requestId": EXAMPLE_REQUEST_ID,
    "receivedAt": EXAMPLE_TIMESTAMP,
    "phoneNumber": "+14801234567",
    "state": "AZ",
    "tracking": {"lead_id": "L-12345"},
    "outcome": "completed",
    "transferTarget": "+18775703926",
    "arrival": "on_time",
    "unmatchedCalls": 0,
    "connectedAt": "2025-09-19T17:45:41.002Z",
    "endedAt": "2025-09-19T17:48:45.530Z",
    "talkTimeSeconds": 184,
    "callerIdMatch": True,
    "billable": "yes",
    "billableReason": None,
    "payout": _PAYOUT,
}


def _error(status: int, *, messages: list[str] | None = None) -> serializers.Serializer:
    return _envelope(
        f"VendorCallsError{status}",
        status,
        {"message": _message(messages), "requestId": _request_id()},
    )


_CALL_FIELDS: dict[str, serializers.Field] = {
    "requestId": serializers.UUIDField(help_text="The requestId your ping got back."),
    "receivedAt": serializers.DateTimeField(help_text="When we answered the ping (UTC)."),
    "phoneNumber": serializers.CharField(help_text="The caller, E.164."),
    "state": serializers.CharField(),
    "tracking": serializers.DictField(help_text="Every extra field your ping sent."),
    "outcome": serializers.ChoiceField(choices=CallRecord.Outcome.values),
    "transferTarget": serializers.CharField(allow_null=True),
    "arrival": serializers.ChoiceField(
        choices=["on_time", "late"],
        allow_null=True,
        help_text="How your transfer reached us: during its hold, or after it ended (late, still "
        "credited to this ping); null when no call arrived.",
    ),
    "unmatchedCalls": serializers.IntegerField(
        min_value=0,
        help_text="Further calls on the same number after this hold was used, before anyone "
        "else's hold there: yours, though no hold was waiting for them.",
    ),
    "connectedAt": _nullable_time("When the transferred call arrived."),
    "endedAt": _nullable_time("When the call ended."),
    "talkTimeSeconds": serializers.IntegerField(allow_null=True),
    "callerIdMatch": serializers.BooleanField(
        allow_null=True, help_text="The caller id matched the ping's phoneNumber (null: unknown)."
    ),
    "billable": serializers.ChoiceField(choices=["yes", "no", "pending"], allow_null=True),
    "billableReason": serializers.CharField(allow_null=True),
    "payout": serializers.DictField(allow_null=True, help_text='{"amount": "25.00", "currency"}'),
}

CALLS_PAGE = _envelope(
    "VendorCallsPage",
    200,
    {
        "results": inline_serializer(
            name="VendorCall", fields=_CALL_FIELDS, many=True, help_text="Newest first."
        ),
        "next": serializers.URLField(allow_null=True, help_text="The next page, or null."),
        "previous": serializers.URLField(allow_null=True),
        "requestId": _request_id(),
    },
)

VENDOR_CALLS_SCHEMA = extend_schema(
    operation_id="vendor_calls",
    summary="Your call records: outcome, talk time, billable and payout",
    description=(
        "Your own call records, newest first, 100 a page (`page_size` up to 500); follow `next`. "
        "Send your vendor key as `Authorization: Bearer <key>`. Counts toward your key's rate "
        "limit like a ping. Unknown parameters are refused."
    ),
    tags=["Vendor calls"],
    parameters=[
        OpenApiParameter(
            "Authorization",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            required=True,
            description="`Bearer <your vendor key>`.",
        ),
        OpenApiParameter(
            "since", OpenApiTypes.DATETIME, description="Records received at or after (ISO-8601)."
        ),
        OpenApiParameter("until", OpenApiTypes.DATETIME, description="Records received before."),
        OpenApiParameter(
            "outcome",
            OpenApiTypes.STR,
            description=f"One or more of {', '.join(CallRecord.Outcome.values)}, comma-separated.",
        ),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="From a `next` link."),
        OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 500; 100 by default."),
    ],
    responses={
        200: OpenApiResponse(
            response=CALLS_PAGE,
            description="A page of your call records.",
            examples=[
                _example(
                    "A page",
                    200,
                    {
                        "results": [EXAMPLE_CALL],
                        "next": "https://calls.example.com/api/v1/vendor/calls?cursor=cD0y",
                        "previous": None,
                        "requestId": EXAMPLE_REQUEST_ID,
                    },
                )
            ],
        ),
        400: OpenApiResponse(
            response=_error(400),
            description="A filter, cursor or page size is not valid.",
            examples=[
                _error_example(
                    "Bad outcome",
                    400,
                    "Invalid outcome: 'won'. Use one or more of "
                    f"{', '.join(CallRecord.Outcome.values)}, separated by commas.",
                )
            ],
        ),
        401: OpenApiResponse(
            response=_error(401, messages=[MESSAGE_BAD_KEY]),
            description="No bearer key, or it is malformed, unknown or revoked.",
            examples=[_error_example("Bad key", 401, MESSAGE_BAD_KEY)],
        ),
        429: OpenApiResponse(
            response=_error(429, messages=[MESSAGE_TOO_MANY]),
            description="Your key's rate limit: wait the seconds in Retry-After.",
        ),
        500: OpenApiResponse(
            response=_error(500, messages=[MESSAGE_UNEXPECTED]),
            description="Our fault. Quote the requestId to support; you may retry.",
        ),
    },
)
