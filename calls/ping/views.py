from django.conf import settings
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from calls.ping.request import read_json_object
from calls.ping.schema import PING_SCHEMA
from calls.ping.service import vendor_ping
from config.errors import FirstRendererNegotiation, envelope_data


class VendorPingView(APIView):
    """POST /functions/v1/vendors-ping: the vendor contract (docs/vendor-guide.md)."""

    http_method_names = ["post"]
    authentication_classes = []
    permission_classes = []
    parser_classes = []  # the body is read as JSON whatever its Content-Type says
    content_negotiation_class = FirstRendererNegotiation

    @PING_SCHEMA
    def post(self, request):
        payload = read_json_object(_body(request), _content_length(request))
        data = vendor_ping(
            payload=payload,
            request_id=request._request.request_id,
            client=_client_address(request),
        )
        return Response(envelope_data(200, data))


def _client_address(request) -> str | None:
    """The client's address as DRF's throttles read it with NUM_PROXIES (TRUSTED_PROXY_COUNT):
    with N trusted proxies in front, the N-th address from the end of X-Forwarded-For.

    Read from META: DRF's `get_ident` builds `request.headers` (every header of the request
    parsed) for one of them, a measurable part of a ping's Python (docs/performance.md).
    """
    meta = request._request.META
    proxies = api_settings.NUM_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not proxies or forwarded is None:
        return meta.get("REMOTE_ADDR") or None
    addresses = forwarded.split(",")
    return addresses[-min(proxies, len(addresses))].strip() or None


def _body(request) -> bytes:
    """The body. Sent in chunks (no Content-Length), Django reads none of it; the server has
    de-chunked it into the input stream, read from there up to one byte past the limit."""
    meta = request._request.META
    if (
        not meta.get("CONTENT_LENGTH")
        and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        and meta.get("wsgi.input_terminated")
    ):
        return meta["wsgi.input"].read(settings.PING_MAX_BODY_BYTES + 1)
    return request.body


def _content_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) or None
    except ValueError:
        return None
