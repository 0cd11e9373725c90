"""kombu's Redis and filesystem transports, mended: a worker that survives a Redis restart, and
messages that never appear half written (FilesystemChannel, below).

When the broker goes away, Celery (5.7) tears the consumer's connection down twice: `collect()`,
then `close()`. The first tear-down cannot close the consuming channel (its pending BRPOP read
fails on the dead socket) but does detach the transport from its connection; the second then
closes that channel again, and kombu tries to put the worker's unacknowledged messages back on
the queue through a transport with no connection: `AttributeError: 'NoneType' object has no
attribute 'hostname'`, which Celery takes for an unrecoverable error, and the worker exits.
Messages are unacknowledged in a worker whenever it holds an ETA task or prefetched work.

Here that second restore is skipped: Redis keeps those messages in its unacknowledged index,
and a worker restores them after the visibility timeout (if Redis kept its data), as kombu
does for a worker that died. Every redis:// broker URL gets this transport (the alias below).
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem, redis
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class RedisQoS(redis.QoS):
    def restore_unacked(self, client=None):
        if client is None and self.channel.connection.client is None:
            # The connection is gone (see above): nothing can be restored through it.
            self._delivered.clear()
            return None
        return super().restore_unacked(client)


class RedisChannel(redis.Channel):
    QoS = RedisQoS


class RedisTransport(redis.Transport):
    Channel = RedisChannel


class FilesystemChannel(filesystem.Channel):
    """kombu's filesystem channel, whose messages appear whole or not at all.

    kombu writes a message in place: a consumer polling the folder can move the file away and
    read it between its creation and its write, read nothing, and the worker exits on the
    JSONDecodeError. Here the message is written under a name no queue reads (no `.msg` suffix
    after the first dot), then renamed into place, which is atomic within the folder.
    """

    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{uuid.uuid4()}.partial")
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class FilesystemTransport(filesystem.Transport):
    Channel = FilesystemChannel


# Every redis:// and filesystem:// URL, whatever process or test names it, gets the mended
# transport: by its scheme, not by a broker_transport setting (which would apply to any URL, a
# test's throwaway Redis or folder included). config.celery imports this module before any
# connection is made.
TRANSPORT_ALIASES["redis"] = "config.celery_transport:RedisTransport"
TRANSPORT_ALIASES["rediss"] = "config.celery_transport:RedisTransport"
TRANSPORT_ALIASES["filesystem"] = "config.celery_transport:FilesystemTransport"
