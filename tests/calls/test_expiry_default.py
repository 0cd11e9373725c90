"""By default a ping queues no expiry task: beat's sweep records expiry (docs/operations.md)."""

import pytest

from tests.conftest import AZ_PING

pytestmark = pytest.mark.django_db


def test_by_default_a_ping_queues_no_expiry_task(demo, ping, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        answer = ping(AZ_PING)

    assert answer.json()["data"]["agentAvailable"] is True
    assert callbacks == []
