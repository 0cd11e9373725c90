from rest_framework.response import Response
from rest_framework.views import APIView

from calls.ping.request import client_address, content_length, read_json_object, request_body
from calls.ping.sandbox import SandboxForcedError
from calls.ping.schema import PING_SCHEMA
from calls.ping.service import KeyValidation, PingAnswer, VendorRefused, vendor_ping
from calls.timestamps import format_timestamp
from config.errors import FirstRendererNegotiation, envelope_data, request_id_of
from config.metrics import ping_outcome_note


class VendorPingView(APIView):
    """POST /functions/v1/vendors-ping: the vendor contract (docs/vendor-guide.md)."""

    http_method_names = ["post"]
    authentication_classes = []
    permission_classes = []
    parser_classes = []  # the body is read as JSON whatever its Content-Type says
    content_negotiation_class = FirstRendererNegotiation

    @PING_SCHEMA
    def post(self, request):
        meta = request.META
        request_id = request_id_of(request)
        payload = read_json_object(request_body(request), content_length(meta))
        try:
            answer = vendor_ping(
                payload=payload, request_id=request_id, client=client_address(meta)
            )
        except VendorRefused:
            ping_outcome_note("rejected")  # for the metrics: refused, and recorded
            raise
        except SandboxForcedError:
            ping_outcome_note("sandbox")  # asked for by the vendor: not counted as our error
            raise
        if isinstance(answer, KeyValidation):
            ping_outcome_note("key_validation")
            return Response(envelope_data(200, key_validation_data(answer, request_id)))
        # Sandbox answers are counted apart, so test traffic never moves the live figures.
        ping_outcome_note("sandbox" if answer.sandbox else answer.outcome)
        return Response(envelope_data(200, ping_answer_data(answer, request_id)))

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, SandboxForcedError):
            # The sandbox module logged it as sandbox-forced; Django would log every 500 answer
            # again as an "Internal Server Error" at ERROR level.
            response._has_been_logged = True
        return response


def key_validation_data(answer: KeyValidation, request_id: str) -> dict:
    return {
        "vendorActive": answer.vendor_active,
        "authorizedStates": answer.authorized_states,
        **({"warnings": list(answer.warnings)} if answer.warnings else {}),
        **({"sandbox": True} if answer.sandbox else {}),
        "requestId": request_id,
    }


def ping_answer_data(answer: PingAnswer, request_id: str) -> dict:
    """The `data` of the contract's answer, in the guide's field order."""
    data: dict = {"agentAvailable": answer.agent_available}
    if answer.agent_available:
        data["transferTarget"] = answer.transfer_target
        data["ttlSeconds"] = answer.ttl_seconds
        data["agentCount"] = answer.agent_count
    else:
        data["reason"] = answer.reason
        if answer.retry_after_seconds is not None:
            data["retryAfterSeconds"] = answer.retry_after_seconds
    if answer.warnings:
        data["warnings"] = list(answer.warnings)
    data["timestamp"] = format_timestamp(answer.timestamp)
    data["requestId"] = request_id
    return data
