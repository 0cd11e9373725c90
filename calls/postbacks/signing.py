"""The postback signature: HMAC-SHA256 over `<timestamp>.<body>` with the endpoint's secret.

Sent as `X-Signature: t=<unix seconds>,v1=<hex digest>`; docs/vendor-guide.md shows the check in
Python and Node. The timestamp is signed with the body, so a captured postback cannot be replayed
later with a fresh timestamp; receivers refuse timestamps older than a few minutes.
"""

import hashlib
import hmac
import secrets

from calls.postbacks.models import SECRET_PREFIX

SIGNATURE_HEADER = "X-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Postback-Event"
SIGNATURE_VERSION = "v1"


def postback_secret_new() -> str:
    """A fresh endpoint secret: 32 random bytes, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def postback_signature(*, secret: str, timestamp: int, body: str) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under the secret (both as UTF-8)."""
    message = f"{timestamp}.{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def postback_signature_header(*, secret: str, timestamp: int, body: str) -> str:
    digest = postback_signature(secret=secret, timestamp=timestamp, body=body)
    return f"t={timestamp},{SIGNATURE_VERSION}={digest}"
