"""Keep the vendor-key cache true: any saved or deleted key or vendor is forgotten at once.

Signals rather than calls in each service, because staff change vendors and keys through the
admin as well as through the services, and a stale entry would let a revoked key in.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from vendors.models import Holiday, OpeningHours, Vendor, VendorCap, VendorKey
from vendors.services import vendor_cache_clear, vendor_key_cache_clear


@receiver([post_save, post_delete], sender=VendorKey, dispatch_uid="vendor_key_cache")
def _vendor_key_changed(sender, instance: VendorKey, **kwargs) -> None:
    vendor_key_cache_clear(digests=[instance.digest])


@receiver([post_save, post_delete], sender=Vendor, dispatch_uid="vendor_cache")
def _vendor_changed(sender, instance: Vendor, **kwargs) -> None:
    vendor_cache_clear(vendor_id=instance.pk)


@receiver([post_save, post_delete], sender=VendorCap, dispatch_uid="vendor_cap_cache")
@receiver([post_save, post_delete], sender=OpeningHours, dispatch_uid="opening_hours_cache")
@receiver([post_save, post_delete], sender=Holiday, dispatch_uid="holiday_cache")
def _vendor_policy_changed(sender, instance, **kwargs) -> None:
    # A row of no vendor is the operator's: every vendor's cached policies may use it.
    vendor_cache_clear(vendor_id=instance.vendor_id)
