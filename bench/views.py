"""Endpoints for `make bench` alone, routed only with BENCH_ENDPOINTS on (bench/urls.py)."""

from django.db import connection
from rest_framework.response import Response
from rest_framework.views import APIView

from calls.ping.request import client_address, content_length, read_json_object, request_body
from config.errors import FirstRendererNegotiation, envelope_data, request_id_of
from vendors.services import vendor_key_admit


class BenchNoopView(APIView):
    """A trivial endpoint with no database, routed only with BENCH_ENDPOINTS on: `make bench`
    compares the ping's throughput with it, on the same server and stack."""

    http_method_names = ["post"]
    authentication_classes = []
    permission_classes = []
    parser_classes = []
    content_negotiation_class = FirstRendererNegotiation

    def post(self, request):
        return Response(envelope_data(200, {"requestId": request_id_of(request)}))


class BenchRoundTripsView(BenchNoopView):
    """The round trips every ping makes, and nothing else, routed only with BENCH_ENDPOINTS on:
    the body read and the key checked as a ping's (the shared cache: key and rate limits), then
    one statement on the database that reads nothing. No ping can be faster on the same server:
    `make bench` measures it beside the ping."""

    def post(self, request):
        payload = read_json_object(request_body(request), content_length(request.META))
        vendor_key_admit(key=payload.get("vendorKey"), client=client_address(request.META))
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Response(envelope_data(200, {"requestId": request_id_of(request)}))
