"""GET /api/v1/call-records: the read-only reporting endpoint for BI tools.

Token authentication, for users who may export call records (superusers and analysts); the
same filters as every export; cursor pagination as JSON, or the whole selection streamed as
CSV with `format=csv`. Errors use DRF's usual shape ({"detail": ...} or per-field lists): the
vendor contract's envelope is for /functions/ only.
"""

import json
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

from django.core import signing
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView, exception_handler

from calls.exports.forms import CallRecordFilters, InvalidFilters, call_record_filters_parse
from calls.exports.jobs import EXPORT_PERMISSION, call_export_record, call_export_stream
from calls.exports.selectors import call_record_select
from calls.exports.sheet import RECORD_COLUMNS, call_record_as_json
from calls.models import CallExport
from config.database import analytics_db
from config.errors import FirstRendererNegotiation

_RECORD_PATHS = [path for _, path in RECORD_COLUMNS]
# Query parameters that are not filters.
_NON_FILTER_PARAMS = {"format", "cursor", "page_size"}


class CanExportCallRecords(BasePermission):
    message = "You do not have permission to export call records."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(EXPORT_PERMISSION))


class CallRecordCursorPagination(CursorPagination):
    """DRF's cursors, signed for the listing that issued them.

    A listing is audited at its first page, so a page with a cursor must continue an audited
    listing: a made-up cursor (DRF's are base64 of `o=…&p=…`) could start anywhere, unaudited,
    and a real one reused with other filters or by another user would list what no audit row
    records. The signature covers the user and the filters; anything else is refused with 400.
    An empty cursor is no cursor: a first page, audited as one.
    """

    ordering = ("received_at", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    invalid_cursor_message = (
        "This cursor was not issued for this listing: follow the next and previous links, "
        "or start again without a cursor."
    )

    def __init__(self, *, user, filters: CallRecordFilters):
        listing = json.dumps([user.pk, filters.as_json()], sort_keys=True)
        self.signer = signing.Signer(salt=f"calls.api.cursor:{listing}")

    def encode_cursor(self, cursor):
        url = super().encode_cursor(cursor)
        unsigned = parse_qs(urlsplit(url).query)[self.cursor_query_param][0]
        return replace_query_param(url, self.cursor_query_param, self.signer.sign(unsigned))

    def decode_cursor(self, request):
        value = request.query_params.get(self.cursor_query_param, "").strip()
        if not value:
            return None
        try:
            unsigned = self.signer.unsign(value)
        except signing.BadSignature:
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None
        # DRF's own decoding reads only `query_params` of what it is given.
        return super().decode_cursor(
            SimpleNamespace(query_params={self.cursor_query_param: unsigned})
        )


class CallRecordListView(APIView):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated, CanExportCallRecords]
    # `format=csv` is ours to read: DRF's format suffix negotiation would answer it with a 404.
    content_negotiation_class = FirstRendererNegotiation
    pagination_class = CallRecordCursorPagination

    def get_exception_handler(self):
        return exception_handler

    def get(self, request):
        params = request.query_params
        export_format = params.get("format", "json").lower()
        if export_format not in ("json", "csv"):
            raise exceptions.ValidationError({"format": ["Use json or csv."]})
        filter_data = params.copy()
        for key in _NON_FILTER_PARAMS:
            filter_data.pop(key, None)
        try:
            filters = call_record_filters_parse(data=filter_data)
        except InvalidFilters as exc:
            raise exceptions.ValidationError(exc.errors) from None

        if export_format == "csv":
            stream = call_export_stream(
                user=request.user,
                filters=filters,
                export_format=CallExport.Format.CSV,
                source="api",
            )
            response = StreamingHttpResponse(stream.chunks, content_type=stream.content_type)
            response["Content-Disposition"] = f'attachment; filename="{stream.filename}"'
            return response

        paginator = self.pagination_class(user=request.user, filters=filters)
        records = call_record_select(filters=filters, using=analytics_db()).values(
            "id", *_RECORD_PATHS, "tracking"
        )
        page = paginator.paginate_queryset(records, request, view=self)
        if paginator.cursor is None:
            # The first page starts a listing: that is the export the audit records.
            call_export_record(
                user=request.user,
                source="api",
                filters=filters,
                export_format=CallExport.Format.JSON,
                status=CallExport.Status.DONE,
                rows_written=len(page),
                finished_at=timezone.now(),
            )
        results = [
            call_record_as_json([row[path] for path in _RECORD_PATHS], row["tracking"])
            for row in page
        ]
        return paginator.get_paginated_response(results)
