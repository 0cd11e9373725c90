"""A secret shown once in the admin (a vendor key, a postback secret).

The POST that made it answers with a redirect; the secret rides to the next page in a signed
cookie bound to the object and the login, for a minute at most. That page shows it, is never
cached, and deletes the cookie: a reload shows nothing, and makes nothing again.
"""

import json

from django.conf import settings
from django.core import signing
from django.http import HttpResponseRedirect

REVEAL_SECONDS = 60


def _salt(request, *, cookie: str, object_pk) -> str:
    # Bound to the object and the login: the cookie opens that object's page, for that user only.
    return f"{cookie}:{object_pk}:{request.user.pk}"


def reveal_redirect(request, *, cookie: str, url: str, object_pk, carried: dict):
    """The answer to the POST that made the secret: off to `url`, `carried` in the cookie."""
    response = HttpResponseRedirect(url, status=303)
    response.set_signed_cookie(
        cookie,
        json.dumps(carried),
        salt=_salt(request, cookie=cookie, object_pk=object_pk),
        max_age=REVEAL_SECONDS,
        path=url,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )
    return response


def revealed(request, *, cookie: str, object_pk) -> dict | None:
    """What the cookie carries for this object and login; None when there is none (or it was
    tampered with, or is too old)."""
    try:
        raw = request.get_signed_cookie(
            cookie, salt=_salt(request, cookie=cookie, object_pk=object_pk), max_age=REVEAL_SECONDS
        )
        carried = json.loads(raw)
    except (KeyError, TypeError, ValueError, signing.BadSignature):
        return None
    return carried if isinstance(carried, dict) else None


def reveal_page(response, *, cookie: str, url: str):
    """The page that shows the secret: never cached, and the cookie gone once it is shown."""
    response["Cache-Control"] = "no-store"
    response.delete_cookie(cookie, path=url, samesite="Strict")
    return response
