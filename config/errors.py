"""One shape for every error vendors can see: the contract's envelope.

Services raise `ApplicationError` (or a subclass); views never build error responses by hand.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import OperationalError
from django.http import Http404, JsonResponse
from psycopg.errors import LockNotAvailable, QueryCanceled
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from config.postgresql.base import DatabaseStalled

logger = logging.getLogger(__name__)

MESSAGE_BAD_BODY = "Request body must be a JSON object."
MESSAGE_METHOD = "Method not allowed. Use POST."
MESSAGE_TOO_LARGE = "Request body too large."
MESSAGE_UNEXPECTED = "An unexpected condition was encountered by the server."
MESSAGE_NOT_FOUND = "Not found."
MESSAGE_TOO_MANY = "Too many requests."
MESSAGE_UNAVAILABLE = "The service is busy. Please retry shortly."
MESSAGE_FORBIDDEN = "Forbidden."
MESSAGE_NOT_PROCESSED = "Request could not be processed."
# Seconds a client is asked to wait after a database stall: the statement timeouts are shorter.
STALL_RETRY_AFTER_SECONDS = 1


class ApplicationError(Exception):
    """A refusal with the status and message the contract gives it."""

    status = 400
    message = MESSAGE_BAD_BODY
    headers: dict[str, str] = {}  # e.g. Retry-After on a 429

    def __init__(self, message: str | None = None, *, status: int | None = None):
        if message is not None:
            self.message = message
        if status is not None:
            self.status = status
        super().__init__(self.message)


class BadBody(ApplicationError):
    status = 400
    message = MESSAGE_BAD_BODY


class BodyTooLarge(ApplicationError):
    status = 413
    message = MESSAGE_TOO_LARGE


def envelope_data(status: int, data: dict) -> dict:
    return {"status": status, "data": data}


def error_data(request, status: int, message: str) -> dict:
    return envelope_data(status, {"message": message, "requestId": request_id_of(request)})


def request_id_of(request) -> str:
    # Set by RequestIdMiddleware on Django's request; DRF's request passes attributes through.
    return getattr(request, "request_id", "")


def envelope_json_response(
    request, status: int, message: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    """For errors raised outside DRF views (middleware, URL resolver, body limits)."""
    return JsonResponse(error_data(request, status, message), status=status, headers=headers)


def is_database_stall(exc: BaseException) -> bool:
    """A statement the database cancelled at its timeout, a lock not granted in time, or a
    server that sent nothing (config/postgresql): busy for now, not broken. Nothing was written:
    the statement, or the transaction around it, rolled back."""
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if isinstance(cause, QueryCanceled | LockNotAvailable | DatabaseStalled):
        return True
    # SQLite's busy timeout ran out waiting for another writer.
    return "database is locked" in str(exc)


def database_stall_answer(request, exc: BaseException) -> tuple[int, str, dict[str, str]]:
    logger.warning("Database stalled on %s %s: %s", request.method, request.path, exc)
    return 503, MESSAGE_UNAVAILABLE, {"Retry-After": str(STALL_RETRY_AFTER_SECONDS)}


# The answer to each exception whose answer is fixed, whether a DRF view raised it (the handler
# below) or it escaped to the middleware (config/middleware.py): one table for both.
ERROR_ANSWERS: tuple[tuple[type[BaseException], int, str], ...] = (
    # Django's own body limit, met when a view reads a body far over the contract's.
    (RequestDataTooBig, 413, MESSAGE_TOO_LARGE),
    (Http404, 404, MESSAGE_NOT_FOUND),
    (PermissionDenied, 403, MESSAGE_FORBIDDEN),
    (exceptions.MethodNotAllowed, 405, MESSAGE_METHOD),
    (exceptions.Throttled, 429, MESSAGE_TOO_MANY),
    (exceptions.ParseError, 400, MESSAGE_BAD_BODY),
    (exceptions.UnsupportedMediaType, 400, MESSAGE_BAD_BODY),
)
# The message for an answer of which only the status is known (an HTML page replaced).
STATUS_MESSAGES = {404: MESSAGE_NOT_FOUND, 405: MESSAGE_METHOD, 413: MESSAGE_TOO_LARGE}


def error_answer(request, exc: BaseException) -> tuple[int, str, dict[str, str]] | None:
    """Status, message and headers for an exception; None for an unexpected one (a 500)."""
    if isinstance(exc, ApplicationError):
        return exc.status, exc.message, dict(exc.headers)
    for kind, status, message in ERROR_ANSWERS:
        if isinstance(exc, kind):
            headers = {}
            # DRF sets `wait` in Throttled's __init__; its stubs do not declare it.
            wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
            if wait is not None:
                headers["Retry-After"] = str(max(1, int(wait + 0.999)))
            return status, message, headers
    if isinstance(exc, exceptions.APIException):
        return exc.status_code, _detail_text(exc.detail), {}
    if is_database_stall(exc):
        return database_stall_answer(request, exc)
    return None


def message_for_status(status: int) -> str:
    if status in STATUS_MESSAGES:
        return STATUS_MESSAGES[status]
    return MESSAGE_UNEXPECTED if status >= 500 else MESSAGE_NOT_PROCESSED


def envelope_exception_handler(exc, context):
    """DRF's exception handler: every error raised in an API view, in the envelope."""
    request = context["request"]
    answer = error_answer(request, exc)
    if answer is None:
        logger.exception("Unhandled error in %s", request.path)
        answer = 500, MESSAGE_UNEXPECTED, {}
    status, message, headers = answer
    if isinstance(exc, ApplicationError):
        # Refusals write no call record; the log (with the request id) is their trace.
        logger.info("Refused %s %s: %s", request.method, request.path, message)
    elif isinstance(exc, exceptions.MethodNotAllowed):
        view = context.get("view")
        if view is not None:
            headers["Allow"] = ", ".join(view.allowed_methods)
    return Response(error_data(request, status, message), status=status, headers=headers)


def _detail_text(detail) -> str:
    if isinstance(detail, list | tuple) and detail:
        return _detail_text(detail[0])
    if isinstance(detail, dict) and detail:
        return _detail_text(next(iter(detail.values())))
    return str(detail)


class FirstRendererNegotiation(BaseContentNegotiation):
    """Always answer JSON: a vendor's odd Accept header must not turn into a 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
