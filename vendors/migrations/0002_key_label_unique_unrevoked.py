"""One unrevoked key per vendor and label. Keys made twice under one label before this (a
reloaded page made a second key) keep working: the later ones get " (2)", " (3)"… added."""

from django.conf import settings
from django.db import migrations, models


def relabel_duplicates(apps, schema_editor):
    VendorKey = apps.get_model("vendors", "VendorKey")
    seen: dict[tuple, int] = {}
    unrevoked = VendorKey.objects.filter(revoked_at__isnull=True).exclude(label="")
    for key in unrevoked.order_by("vendor_id", "label", "created_at", "pk"):
        group = (key.vendor_id, key.label)
        seen[group] = seen.get(group, 0) + 1
        if seen[group] > 1:
            suffix = f" ({seen[group]})"
            key.label = key.label[: 100 - len(suffix)] + suffix
            key.save(update_fields=["label"])


class Migration(migrations.Migration):
    dependencies = [
        ("vendors", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(relabel_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="vendorkey",
            constraint=models.UniqueConstraint(
                condition=models.Q(("revoked_at__isnull", True), models.Q(("label", ""), _negated=True)),
                fields=("vendor", "label"),
                name="vendor_key_label_unique_unrevoked",
                violation_error_message="The vendor already has an active key with this label.",
            ),
        ),
    ]
