"""The ping endpoint's OpenAPI description: what `/api/schema/` and `/docs/` show vendors.

Only metadata: drf-spectacular reads it when the schema is generated, never on a ping.
The shapes and messages are the contract's (docs/vendor-guide.md); keep them in step with it.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers

from calls.ping.request import MESSAGE_BAD_PHONE, MESSAGE_BAD_STATE, PingRequestSerializer
from calls.ping.service import MESSAGE_INACTIVE
from config.errors import (
    MESSAGE_BAD_BODY,
    MESSAGE_METHOD,
    MESSAGE_TOO_LARGE,
    MESSAGE_TOO_MANY,
    MESSAGE_UNAVAILABLE,
    MESSAGE_UNEXPECTED,
)
from routing.models import UnavailableReason
from vendors.services import MESSAGE_BAD_KEY

DEMO_KEY = "6ab36a94-5dfb-4336-a559-63da6a5a26d2"
ALL_STATES_KEY = "3f1c2a9e-7b4d-4e8a-9c61-2d5b8e0f4a17"
EXAMPLE_REQUEST_ID = "12345678-1234-1234-1234-123456789abc"
EXAMPLE_TIMESTAMP = "2025-09-19T17:45:23.123Z"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
E164_PATTERN = r"^\+[1-9]\d{1,14}$"
# Refusals for a state carry its code, so they are a pattern rather than one fixed text.
MESSAGE_FORBIDDEN_PATTERN = r"^Vendor is (not active|not authorized for state [A-Z]{2})\.$"


def _constant(value: bool | int, **kwargs) -> serializers.Field:
    """A field whose schema admits one value: it tells the envelope's variants apart."""
    kind = "boolean" if isinstance(value, bool) else "integer"

    @extend_schema_field({"type": kind, "enum": [value]})
    class Constant(serializers.Field):
        pass

    return Constant(**kwargs)


def _request_id() -> serializers.Field:
    return serializers.UUIDField(
        help_text="This request's id, also in the X-Request-ID header. Quote it to support."
    )


def _timestamp() -> serializers.Field:
    @extend_schema_field(
        {"type": "string", "pattern": TIMESTAMP_PATTERN, "example": EXAMPLE_TIMESTAMP}
    )
    class Timestamp(serializers.Field):
        pass

    return Timestamp(help_text="When we answered: UTC, ISO-8601 with milliseconds.")


def _message(messages: list[str] | None = None, pattern: str | None = None) -> serializers.Field:
    schema: dict = {"type": "string"}
    if messages:
        schema["enum"] = messages
    if pattern:
        schema["pattern"] = pattern

    @extend_schema_field(schema)
    class Message(serializers.Field):
        pass

    return Message(help_text="What was wrong, in plain words.")


def _envelope(name: str, status: int, data_fields: dict) -> serializers.Serializer:
    """The contract's envelope, `{"status": <int>, "data": {...}}`, around one answer's fields."""
    return inline_serializer(
        name=name,
        fields={
            "status": _constant(status),
            "data": inline_serializer(name=f"{name}Data", fields=data_fields),
        },
    )


def _warnings() -> serializers.Field:
    return serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=(
            "Only when the body has fields that look like misspelled contract fields "
            "(`phone_number`, `phone`, `state`, `state_code`, `vendor_key`, any case): one "
            "message naming each. Such fields are only stored as tracking data."
        ),
    )


# Retry hints, per reason (docs/vendor-guide.md).
REASONS_HELP = (
    "Why no agent was reserved: `no_agent` (none licensed for the state is free), "
    "`concurrency_cap`, `hourly_cap`, `daily_cap` (your account's limits), `closed` (outside "
    "your hours of operation in the caller's time zone, or a holiday), `duplicate_caller` "
    "(already transferred within your duplicate window), `do_not_call` (on our do-not-call "
    "list), `consent_missing` (your account must send consent evidence: a TrustedForm "
    "certificate URL or a Jornaya LeadiD)."
)


@extend_schema_serializer(component_name="PingRequest")
class PingRequestDocumented(PingRequestSerializer):
    """The body as documented: the contract's fields and the consent evidence fields, which are
    tracking data like any other (stored verbatim) that the ping also reads."""

    xxTrustedFormCertUrl = serializers.CharField(
        required=False,
        help_text=(
            "Consent evidence: a TrustedForm certificate URL, "
            "`https://cert.trustedform.com/` and 40 hex digits (also read from "
            "`trusted_form_cert_url`)."
        ),
    )
    jornaya_leadid = serializers.CharField(
        required=False,
        help_text=(
            "Consent evidence: a Jornaya LeadiD, 36 characters, hex digits in 8-4-4-4-12 "
            "groups (also read from `universal_leadid` and `leadid_token`)."
        ),
    )


AVAILABLE = _envelope(
    "PingAvailable",
    200,
    {
        "agentAvailable": _constant(True),
        "transferTarget": serializers.RegexField(
            E164_PATTERN, help_text="Blind-transfer the caller to this number."
        ),
        "ttlSeconds": serializers.IntegerField(
            min_value=1, help_text="Seconds the agent and the number are held for you."
        ),
        "agentCount": serializers.IntegerField(
            min_value=1,
            help_text="Agents licensed for the state who were free, yours included.",
        ),
        "warnings": _warnings(),
        "timestamp": _timestamp(),
        "requestId": _request_id(),
    },
)

UNAVAILABLE = _envelope(
    "PingUnavailable",
    200,
    {
        "agentAvailable": _constant(False),
        "reason": serializers.ChoiceField(choices=UnavailableReason.values, help_text=REASONS_HELP),
        "retryAfterSeconds": serializers.IntegerField(
            min_value=1,
            required=False,
            help_text=(
                "Where a later ping can succeed: seconds to wait first (the soonest end of a "
                "hold in the state, of one of your holds, of the hour or day, or until you "
                "open). Absent for `duplicate_caller`, `do_not_call` and `consent_missing`."
            ),
        ),
        "warnings": _warnings(),
        "timestamp": _timestamp(),
        "requestId": _request_id(),
    },
)

KEY_VALIDATION = _envelope(
    "KeyValidation",
    200,
    {
        "vendorActive": serializers.BooleanField(),
        "authorizedStates": serializers.ListField(
            child=serializers.RegexField(r"^([A-Z]{2}|All)$"),
            help_text='The state codes you may send, sorted, or `["All"]`.',
        ),
        "sandbox": _constant(
            True,
            required=False,
            help_text=(
                "Only with a sandbox key, always `true`: its pings are answered from the magic "
                "caller numbers (the last four digits force each answer) and hold nothing."
            ),
        ),
        "warnings": _warnings(),
        "requestId": _request_id(),
    },
)


def _error(status: int, *, messages: list[str] | None = None, pattern: str | None = None):
    return _envelope(
        f"Error{status}",
        status,
        {"message": _message(messages, pattern), "requestId": _request_id()},
    )


def _example(name: str, status: int, data: dict, summary: str = "") -> OpenApiExample:
    return OpenApiExample(
        name,
        summary=summary or name,
        value={"status": status, "data": data},
        response_only=True,
        status_codes=[str(status)],
    )


def _error_example(name: str, status: int, message: str) -> OpenApiExample:
    return _example(name, status, {"message": message, "requestId": EXAMPLE_REQUEST_ID})


PING_SCHEMA = extend_schema(
    operation_id="vendors_ping",
    summary="Ping: is an agent free for this caller? (or validate your key)",
    description=(
        "With `phoneNumber`: reserves a free agent licensed for the caller's state and a transfer "
        "number for `ttlSeconds`, and answers with the number to transfer to. Without it: checks "
        "your key and lists your authorized states, reserving nothing. The body is read as JSON "
        "whatever the Content-Type header says, and may be at most 16 KiB."
    ),
    tags=["Vendor ping"],
    request={"application/json": PingRequestDocumented, "text/plain": PingRequestDocumented},
    parameters=[
        OpenApiParameter(
            "X-Request-ID",
            OpenApiTypes.UUID,
            OpenApiParameter.HEADER,
            response=True,
            required=True,
            description="The same id as `data.requestId`.",
        ),
        OpenApiParameter(
            "Retry-After",
            OpenApiTypes.INT,
            OpenApiParameter.HEADER,
            response=[429, 503],
            required=True,
            description="Seconds to wait before pinging again.",
        ),
    ],
    examples=[
        OpenApiExample(
            "Ping",
            value={
                "vendorKey": DEMO_KEY,
                "phoneNumber": "+14801234567",
                "stateCode": "AZ",
                "lead_id": "L-12345",
                "ad_id": "SUMMER-2025",
                "ad_url": "https://example.com/offer",
                "source": "google",
            },
            request_only=True,
        ),
        OpenApiExample("Key validation", value={"vendorKey": DEMO_KEY}, request_only=True),
    ],
    responses={
        200: OpenApiResponse(
            response=PolymorphicProxySerializer(
                component_name="PingOk",
                serializers=[AVAILABLE, UNAVAILABLE, KEY_VALIDATION],
                resource_type_field_name=None,
            ),
            description="An agent is reserved for you, none is free, or your key is valid.",
            examples=[
                _example(
                    "Agent available",
                    200,
                    {
                        "agentAvailable": True,
                        "transferTarget": "+18775703926",
                        "ttlSeconds": 60,
                        "agentCount": 3,
                        "timestamp": EXAMPLE_TIMESTAMP,
                        "requestId": EXAMPLE_REQUEST_ID,
                    },
                ),
                _example(
                    "No agent available",
                    200,
                    {
                        "agentAvailable": False,
                        "reason": "no_agent",
                        "retryAfterSeconds": 42,
                        "timestamp": EXAMPLE_TIMESTAMP,
                        "requestId": EXAMPLE_REQUEST_ID,
                    },
                ),
                _example(
                    "Refused: on the do-not-call list",
                    200,
                    {
                        "agentAvailable": False,
                        "reason": "do_not_call",
                        "timestamp": EXAMPLE_TIMESTAMP,
                        "requestId": EXAMPLE_REQUEST_ID,
                    },
                ),
                _example(
                    "Refused: closed, with a misspelled field",
                    200,
                    {
                        "agentAvailable": False,
                        "reason": "closed",
                        "retryAfterSeconds": 3600,
                        "warnings": [
                            "Field 'phone_number' is not part of the contract (did you mean "
                            "'phoneNumber'?); it was stored as tracking data."
                        ],
                        "timestamp": EXAMPLE_TIMESTAMP,
                        "requestId": EXAMPLE_REQUEST_ID,
                    },
                ),
                _example(
                    "Key valid",
                    200,
                    {
                        "vendorActive": True,
                        "authorizedStates": ["AZ", "CA"],
                        "requestId": EXAMPLE_REQUEST_ID,
                    },
                ),
                _example(
                    "Key valid, sandbox key",
                    200,
                    {
                        "vendorActive": True,
                        "authorizedStates": ["AZ", "CA"],
                        "sandbox": True,
                        "requestId": EXAMPLE_REQUEST_ID,
                    },
                ),
                _example(
                    "Key valid, all states",
                    200,
                    {
                        "vendorActive": True,
                        "authorizedStates": ["All"],
                        "requestId": EXAMPLE_REQUEST_ID,
                    },
                ),
            ],
        ),
        400: OpenApiResponse(
            response=_error(400, messages=[MESSAGE_BAD_BODY, MESSAGE_BAD_PHONE, MESSAGE_BAD_STATE]),
            description="The body is not a JSON object, or the phone number or state is wrong.",
            examples=[
                _error_example("Bad phone number", 400, MESSAGE_BAD_PHONE),
                _error_example("Bad state code", 400, MESSAGE_BAD_STATE),
                _error_example("Body not a JSON object", 400, MESSAGE_BAD_BODY),
            ],
        ),
        401: OpenApiResponse(
            response=_error(401, messages=[MESSAGE_BAD_KEY]),
            description="The key is missing, malformed, unknown or revoked.",
            examples=[_error_example("Bad key", 401, MESSAGE_BAD_KEY)],
        ),
        403: OpenApiResponse(
            response=_error(403, pattern=MESSAGE_FORBIDDEN_PATTERN),
            description="Your account is inactive, or not authorized for the caller's state.",
            examples=[
                _error_example("Vendor inactive", 403, MESSAGE_INACTIVE),
                _error_example(
                    "State not authorized", 403, "Vendor is not authorized for state TX."
                ),
            ],
        ),
        405: OpenApiResponse(
            response=_error(405, messages=[MESSAGE_METHOD]),
            description="Any method but POST.",
            examples=[_error_example("Not POST", 405, MESSAGE_METHOD)],
        ),
        413: OpenApiResponse(
            response=_error(413, messages=[MESSAGE_TOO_LARGE]),
            description="The body is over 16 KiB.",
            examples=[_error_example("Body too large", 413, MESSAGE_TOO_LARGE)],
        ),
        429: OpenApiResponse(
            response=_error(429, messages=[MESSAGE_TOO_MANY]),
            description="Too many pings: wait the seconds in Retry-After.",
            examples=[_error_example("Rate limited", 429, MESSAGE_TOO_MANY)],
        ),
        500: OpenApiResponse(
            response=_error(500, messages=[MESSAGE_UNEXPECTED]),
            description="Our fault. Quote the requestId to support; you may retry.",
            examples=[_error_example("Server error", 500, MESSAGE_UNEXPECTED)],
        ),
        503: OpenApiResponse(
            response=_error(503, messages=[MESSAGE_UNAVAILABLE]),
            description="Busy for a moment (our database stalled); nothing was reserved. Retry "
            "after the seconds in Retry-After.",
            examples=[_error_example("Busy", 503, MESSAGE_UNAVAILABLE)],
        ),
    },
)


def tighten_envelopes(result, generator, request, public):
    """Postprocessing hook: answers have exactly the documented fields; pings may carry more.

    Closed answer objects are what let `oneOf` tell the three 200 shapes apart, and what lets a
    schema check catch a stray field.
    """
    schemas = result.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if name == "PingRequest":
            schema["additionalProperties"] = True
        elif schema.get("type") == "object":
            schema["additionalProperties"] = False
    return result


def vendor_endpoints_only(endpoints):
    """Preprocessing hook: the vendor docs describe the vendor API, not staff or internal URLs."""
    return [
        endpoint
        for endpoint in endpoints
        if endpoint[0].startswith(("/functions/", "/api/v1/vendor/"))
    ]
