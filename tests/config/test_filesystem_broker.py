"""The filesystem broker (the zero-set-up default) never hands a worker a half-written message.

kombu's own filesystem transport writes a message in place, so a consumer polling the folder can
take the file between its creation and its write and read nothing: the worker then exits on a
JSONDecodeError. Seen with `make test` on a busy machine. A producer and a consumer on real
folders, with messages large enough to take a while to write.
"""

import threading

import pytest
from kombu import Connection

from config.celery_transport import FilesystemTransport, RedisTransport

MESSAGES = 150
PAYLOAD = "x" * 400_000  # big enough that writing one takes a moment


def deliver(transport, folder) -> tuple[int, list[Exception]]:
    # Polled often, so a consumer that drained the folder comes back at once for the next.
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "polling_interval": 0.01,
    }
    received, errors = 0, []
    done = threading.Event()

    def consume():
        nonlocal received
        with Connection(transport=transport, transport_options=options) as connection:
            queue = connection.SimpleQueue("race")
            while received < MESSAGES and not done.is_set():
                try:
                    message = queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                except Exception as exc:  # the half-written message
                    errors.append(exc)
                    return
                assert message.payload == PAYLOAD
                message.ack()
                received += 1

    consumer = threading.Thread(target=consume)
    consumer.start()
    with Connection(transport=transport, transport_options=options) as connection:
        queue = connection.SimpleQueue("race")
        for _ in range(MESSAGES):
            queue.put(PAYLOAD)
    consumer.join(timeout=120)
    done.set()
    return received, errors


def test_every_message_reaches_the_consumer_whole(tmp_path):
    received, errors = deliver(FilesystemTransport, tmp_path)

    assert errors == []
    assert received == MESSAGES


def test_broker_urls_get_the_mended_transports_by_their_scheme(tmp_path):
    # Whatever the settings' own broker is: make run's folder, or a test's throwaway Redis.
    from config.celery import app

    with app.connection_for_write("filesystem://localhost//") as connection:
        assert type(connection.transport) is FilesystemTransport
    with app.connection_for_write("redis://127.0.0.1:1/0") as connection:  # not connected to
        assert type(connection.transport) is RedisTransport


@pytest.mark.parametrize("attempt", range(3))
def test_kombus_own_transport_is_the_control(tmp_path, attempt):
    # The same run on kombu's own transport: a consumer reading a message before its write ends.
    # On a quiet machine the window is narrow, so it is tried a few times; one failure is proof.
    from kombu.transport.filesystem import Transport

    received, errors = deliver(Transport, tmp_path)
    if not errors:
        pytest.xfail("the race did not show this time (it is a race)")
    assert received < MESSAGES
