"""Endpoints for `make bench` alone, routed only with BENCH_ENDPOINTS on (bench/urls.py)."""

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from calls.models import CallRecord
from calls.ping.request import (
    client_address,
    content_length,
    read_json_object,
    read_ping_fields,
    request_body,
)
from calls.ping.service import PingAnswer, ping_record_values
from calls.ping.views import ping_answer_data
from config.errors import FirstRendererNegotiation, envelope_data, request_id_of
from routing.allocation import reservation_create, reservation_find_live
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


class BenchOrmPingView(BenchNoopView):
    """A ping as a straightforward Django implementation would make it, routed only with
    BENCH_ENDPOINTS on: the same body and key checks, then, in one `transaction.atomic()`, the
    caller's live hold looked for and `routing.allocation.reservation_create` (the ORM path:
    `select_for_update` on the agent and the number, one query a step), and the call record
    written with `objects.create`. `make bench` compares the ping's one statement with it."""

    def post(self, request):
        request_id = request_id_of(request)
        payload = read_json_object(request_body(request), content_length(request.META))
        vendor = vendor_key_admit(
            key=payload.get("vendorKey"), client=client_address(request.META)
        ).vendor
        fields = read_ping_fields(payload)
        ttl_seconds = settings.RESERVATION_TTL_SECONDS
        with transaction.atomic():
            now = timezone.now()
            record = CallRecord(
                **ping_record_values(vendor, fields, request_id, now),
                outcome=CallRecord.Outcome.NO_AGENT,
                agent_count=0,
            )
            live = reservation_find_live(vendor=vendor, phone_number=fields.phone_number, now=now)
            reservation = (
                live
                or reservation_create(
                    vendor=vendor,
                    phone_number=fields.phone_number,
                    state=fields.state,
                    ttl_seconds=ttl_seconds,
                    now=now,
                ).reservation
            )
            if reservation is not None:
                record.outcome = CallRecord.Outcome.REPEAT if live else CallRecord.Outcome.RESERVED
                record.reservation = reservation
                record.agent_id = reservation.agent_id
                record.transfer_target = str(reservation.transfer_number.number)
                record.agent_count = reservation.agent_count
                record.ttl_seconds = ttl_seconds
            record.save(force_insert=True)
        answer = PingAnswer(
            outcome=record.outcome,
            timestamp=now,
            transfer_target=record.transfer_target or None,
            ttl_seconds=record.ttl_seconds,
            agent_count=record.agent_count,
        )
        return Response(envelope_data(200, ping_answer_data(answer, request_id)))
