"""Request ids on every answer, and the contract's envelope for errors outside DRF views."""

import contextvars
import logging
import uuid

from django.conf import settings

from config.database import database_timeouts_lifted
from config.errors import (
    MESSAGE_UNEXPECTED,
    database_stall_answer,
    envelope_json_response,
    error_answer,
    is_database_stall,
    message_for_status,
)
from config.proxy import PROXY_REQUEST_ID

logger = logging.getLogger(__name__)

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_request_id", default="-"
)


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs a failed request ("Internal Server Error") after the middleware has
        # returned and reset the id; that line carries the request itself.
        request = getattr(record, "request", None)
        record.request_id = getattr(request, "request_id", None) or current_request_id.get()
        return True


# Beyond the envelope paths, where a stalled database is also answered 503 in the envelope.
STALL_ENVELOPE_PREFIXES = ("/api/",)


def _is_envelope_path(path: str) -> bool:
    return path.startswith(settings.ENVELOPE_PATH_PREFIXES)


class RequestIdMiddleware:
    """Outermost middleware: gives each request a UUID and keeps vendor paths in the envelope.

    Anything that escapes the view on a vendor path (a crash, an unrouted URL, an HTML error page)
    is answered as JSON in the envelope, never as HTML or a trace.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # nginx's id when it is in front (config/proxy.py), so its log lines and ours agree.
        request.request_id = request.META.get(PROXY_REQUEST_ID) or str(uuid.uuid4())
        token = current_request_id.set(request.request_id)
        try:
            try:
                response = self.get_response(request)
            except Exception as exc:  # the inner handler normally catches; this is a backstop
                response = self._exception_response(request, exc)
            if _is_envelope_path(request.path) and not _is_json(response):
                response = envelope_json_response(
                    request, response.status_code, message_for_status(response.status_code)
                )
            response["X-Request-ID"] = request.request_id
            return response
        finally:
            current_request_id.reset(token)

    def process_exception(self, request, exception):
        if _is_envelope_path(request.path):
            return self._exception_response(request, exception)
        if is_database_stall(exception) and request.path.startswith(STALL_ENVELOPE_PREFIXES):
            # The reporting API keeps DRF's error format, but a stalled database is no fault of
            # the client's: 503 in the envelope, Retry-After, never a trace.
            return envelope_json_response(request, *database_stall_answer(request, exception))
        return None

    def _exception_response(self, request, exc):
        answer = error_answer(request, exc)
        if answer is not None:
            return envelope_json_response(request, *answer)
        logger.error("Unhandled error in %s", request.path, exc_info=exc)
        return envelope_json_response(request, 500, MESSAGE_UNEXPECTED)


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


class AdminDatabaseTimeoutsMiddleware:
    """The admin's pages count and search whole tables: they run with the long database
    timeouts (config/database.py), every other request with the web's."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix = "/" + settings.ADMIN_URL

    def __call__(self, request):
        if not request.path_info.startswith(self.prefix):
            return self.get_response(request)
        with database_timeouts_lifted():
            return self.get_response(request)
