"""Staff's side of postback endpoints: made with a secret shown once, the secret replaced."""

from django.db import transaction
from django.utils import timezone

from calls.postbacks.addresses import PostbackAddressRefused, postback_url_check
from calls.postbacks.models import PostbackEndpoint, PostbackEventName
from calls.postbacks.signing import postback_secret_new
from config.errors import ApplicationError
from vendors.models import Vendor


class PostbackEndpointInvalid(ApplicationError):
    status = 400


def postback_endpoint_validate(*, url: str, events: list[str]) -> None:
    """Raise PostbackEndpointInvalid for a URL postbacks may not go to, or an unknown event."""
    unknown = sorted(set(events) - set(PostbackEventName.values))
    if unknown:
        raise PostbackEndpointInvalid(f"Unknown events: {', '.join(unknown)}.")
    if not events:
        raise PostbackEndpointInvalid("Choose at least one event.")
    try:
        postback_url_check(url)
    except PostbackAddressRefused as refusal:
        raise PostbackEndpointInvalid(str(refusal)) from None


@transaction.atomic
def postback_endpoint_create(
    *, vendor: Vendor, url: str, events: list[str], description: str = "", actor=None
) -> tuple[PostbackEndpoint, str]:
    """A new endpoint and its secret (returned so staff can be shown it, once)."""
    postback_endpoint_validate(url=url, events=events)
    secret = postback_secret_new()
    endpoint = PostbackEndpoint.objects.create(
        vendor=vendor,
        url=url,
        events=sorted(set(events)),
        description=description,
        secret=secret,
        created_by=actor,
    )
    return endpoint, secret


@transaction.atomic
def postback_endpoint_rotate_secret(*, endpoint: PostbackEndpoint) -> str:
    """A new secret for the endpoint, used from its next attempt on; returned to show once."""
    endpoint.secret = postback_secret_new()
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["secret", "secret_rotated_at"])
    return endpoint.secret
