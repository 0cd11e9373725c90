"""One answer per exception, whether a DRF view raised it or it escaped to the middleware."""

import json

import pytest
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from django.test import RequestFactory
from rest_framework import exceptions
from rest_framework.request import Request

from config.errors import ApplicationError, envelope_exception_handler
from config.middleware import RequestIdMiddleware

PING_PATH = "/functions/v1/vendors-ping"


class Refused(ApplicationError):
    status = 403
    message = "Refused here."


EXCEPTIONS = [
    Http404(),
    PermissionDenied(),
    RequestDataTooBig(),
    exceptions.Throttled(wait=2.5),
    exceptions.ParseError(),
    exceptions.UnsupportedMediaType("text/csv"),
    exceptions.NotFound(),
    Refused(),
]


def _from_the_view(exc) -> tuple[int, dict, str | None]:
    request = Request(RequestFactory().post(PING_PATH))
    response = envelope_exception_handler(exc, {"request": request, "view": None})
    return response.status_code, response.data, response.get("Retry-After")


def _from_the_middleware(exc) -> tuple[int, dict, str | None]:
    def escaping(request):
        raise exc

    response = RequestIdMiddleware(escaping)(RequestFactory().post(PING_PATH))
    return response.status_code, json.loads(response.content), response.get("Retry-After")


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda exc: type(exc).__name__)
def test_the_view_and_the_middleware_answer_an_exception_alike(exc):
    status, data, retry_after = _from_the_view(exc)
    escaped_status, escaped_data, escaped_retry_after = _from_the_middleware(exc)

    assert status == escaped_status != 500
    assert data["data"]["message"] == escaped_data["data"]["message"]
    assert retry_after == escaped_retry_after
