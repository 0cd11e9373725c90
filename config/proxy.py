"""nginx in front of gunicorn on a unix socket (config/nginx/, `make serve`).

Through the socket every request would come from no address, and the app would give it an id of
its own: nginx sends the client's address (X-Real-IP) and the request id it answers with and logs
(X-Request-ID), and they are taken as the request's own. Only a peer on the unix socket, a
process of this machine, is believed; over TCP the headers are ignored, whoever sends them.
"""

import ipaddress
import socket
import uuid

# The request id nginx gave the request, for config.middleware.RequestIdMiddleware.
PROXY_REQUEST_ID = "callrouting.proxy_request_id"


def behind_nginx(app):
    def application(environ, start_response):
        peer = environ.get("gunicorn.socket")
        if peer is not None and peer.family == socket.AF_UNIX:
            address = _ip_address(environ.get("HTTP_X_REAL_IP", ""))
            if address:
                environ["REMOTE_ADDR"] = address
            request_id = _uuid(environ.get("HTTP_X_REQUEST_ID", ""))
            if request_id:
                environ[PROXY_REQUEST_ID] = request_id
        return app(environ, start_response)

    return application


def _ip_address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _uuid(value: str) -> str | None:
    if len(value) != 36:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
