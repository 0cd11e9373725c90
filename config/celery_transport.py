"""kombu's Redis transport, with a worker that survives a Redis restart.

When the broker goes away, Celery (5.7) tears the consumer's connection down twice: `collect()`,
then `close()`. The first tear-down cannot close the consuming channel (its pending BRPOP read
fails on the dead socket) but does detach the transport from its connection; the second then
closes that channel again, and kombu tries to put the worker's unacknowledged messages back on
the queue through a transport with no connection: `AttributeError: 'NoneType' object has no
attribute 'hostname'`, which Celery takes for an unrecoverable error, and the worker exits.
Messages are unacknowledged in a worker whenever it holds an ETA task or prefetched work.

Here that second restore is skipped: Redis keeps those messages in its unacknowledged index,
and a worker restores them after the visibility timeout (if Redis kept its data), as kombu
does for a worker that died. The settings select this transport for redis:// broker URLs.
"""

from kombu.transport import redis


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
