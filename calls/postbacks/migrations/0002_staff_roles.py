"""What the staff roles may do with postbacks: Operations runs endpoints and resends
deliveries; Analysts read the delivery log."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Operations": {
        "postbackendpoint": ["add", "change", "view"],
        "postbackdelivery": ["change", "view"],
        "postbackattempt": ["view"],
    },
    "Analysts": {
        "postbackendpoint": ["view"],
        "postbackdelivery": ["view"],
        "postbackattempt": ["view"],
    },
}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("postbacks")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, by_model in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        for model, actions in by_model.items():
            for action in actions:
                group.permissions.add(
                    Permission.objects.get(
                        content_type__app_label="postbacks", codename=f"{action}_{model}"
                    )
                )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=ROLES):
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="postbacks")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("postbacks", "0001_postback_endpoints_and_deliveries"),
        ("calls", "0004_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
