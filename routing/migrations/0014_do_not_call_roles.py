"""Operations keeps the do-not-call list: adds numbers, removes them (through the audited page;
Django's own delete is off) and reads the audit. A vendor's policies need no permission of their
own: whoever may change the vendor edits them.

After calls' staff-roles migration, which makes the groups (in calls, whose migrations come after
every model's); here, beside the models it grants, so it adds no second leaf to calls'.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATIONS_MAY = {
    "routing": ["add_donotcallnumber", "delete_donotcallnumber", "view_donotcallnumber",
                "view_donotcallchange"],
}  # fmt: skip


def grant(apps, schema_editor):
    # On a fresh database post_migrate has not made the new models' permissions yet.
    app_config = apps.get_app_config("routing")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    operations, _ = Group.objects.get_or_create(name="Operations")
    for app_label, codenames in OPERATIONS_MAY.items():
        operations.permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name="Operations"):
        for app_label, codenames in OPERATIONS_MAY.items():
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label=app_label, codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0013_index_of_a_vendors_live_holds"),
        ("calls", "0004_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
