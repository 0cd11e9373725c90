"""/readyz and the worker: ready while a real worker runs beat's sweep, not ready once it stops."""

import time

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_readyz_is_ready_while_a_worker_sweeps_and_not_ready_once_it_stopped(
    client, settings, celery_stack
):
    settings.READYZ_WORKER_SECONDS = 2  # above the 1 s sweep
    assert client.get("/readyz").json()["checks"]["worker"] == "failed: NoWorkerHeartbeat"

    with celery_stack.running(beat=True):
        ready = celery_stack.wait_for(lambda: client.get("/readyz").status_code == 200, timeout=10)
        assert ready, client.get("/readyz").json()

    stopped_at = time.monotonic()
    while client.get("/readyz").status_code == 200:
        assert time.monotonic() - stopped_at < 2 + 2, "still ready with no worker"
        time.sleep(0.2)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == "failed: NoWorkerHeartbeat"
