from rest_framework.response import Response
from rest_framework.views import APIView

from calls.ping import read_json_object
from calls.schema import PING_SCHEMA
from calls.services import vendor_ping
from config.errors import FirstRendererNegotiation, envelope_data


class VendorPingView(APIView):
    """POST /functions/v1/vendors-ping: the vendor contract (see CONTRACT in the README)."""

    http_method_names = ["post"]
    authentication_classes = []
    permission_classes = []
    parser_classes = []  # the body is read as JSON whatever its Content-Type says
    content_negotiation_class = FirstRendererNegotiation

    @PING_SCHEMA
    def post(self, request):
        payload = read_json_object(request.body, _content_length(request))
        data = vendor_ping(payload=payload, request_id=request._request.request_id)
        return Response(envelope_data(200, data))


def _content_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) or None
    except ValueError:
        return None
