"""Billing rules for the staff roles: Operations keeps each vendor's rules; Analysts read them
(and, with the call records they already read, the statements and scorecards)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Operations": ["add", "change", "delete", "view"],
    "Analysts": ["view"],
}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("calls")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, actions in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for action in actions:
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label="calls", codename=f"{action}_billingrule"
                )
            )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="calls", codename__endswith="_billingrule"
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0010_settlement"),
        ("calls", "0004_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
