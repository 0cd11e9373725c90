"""Bad input found while fuzzing and documenting the ping: each answers in the envelope."""

from tests.conftest import PING_URL


def test_it_answers_413_to_a_body_over_djangos_own_limit(ping, settings):
    # Over DATA_UPLOAD_MAX_MEMORY_SIZE, reading the body raised RequestDataTooBig: a 500.
    body = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = ping(body)
    assert response.status_code == 413
    assert response.json() == {
        "status": 413,
        "data": {"message": "Request body too large.", "requestId": response["X-Request-ID"]},
    }


def test_it_answers_405_in_the_envelope_to_every_other_method(api):
    for method in ("get", "put", "patch", "delete", "options"):
        response = getattr(api, method)(PING_URL)
        assert response.status_code == 405, method
        assert response["Allow"] == "POST"
        assert response.json() == {
            "status": 405,
            "data": {
                "message": "Method not allowed. Use POST.",
                "requestId": response["X-Request-ID"],
            },
        }
