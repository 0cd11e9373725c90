"""The staff roles: Operations runs vendors, keys, agents, numbers and reservations; Analysts read
call records and export them. Lives in calls, the app whose migrations come after every model's.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Operations": {
        "vendors": {
            "vendor": ["add", "change", "view"],
            "vendorkey": ["add", "change", "view"],
            "vendorkeyevent": ["view"],
        },
        "routing": {
            "agent": ["add", "change", "delete", "view"],
            "agentlicense": ["add", "change", "delete", "view"],
            "transfernumber": ["add", "change", "delete", "view"],
            "reservation": ["change", "view"],
        },
    },
    "Analysts": {
        "calls": {
            "callrecord": ["view", "export"],
            "inboundcall": ["view"],
            "dialattempt": ["view"],
            "callexport": ["view"],
        },
    },
}


def create_roles(apps, schema_editor):
    # Permissions are normally made by post_migrate, after every migration: on a fresh database
    # they do not exist yet here, so make them now (it skips the ones that exist).
    for app_label in ("vendors", "routing", "calls"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, by_app in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, by_model in by_app.items():
            for model, actions in by_model.items():
                for action in actions:
                    group.permissions.add(
                        Permission.objects.get(
                            content_type__app_label=app_label,
                            codename=f"{action}_{model}",
                        )
                    )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("vendors", "0001_initial"),
        ("routing", "0002_alter_agentlicense_state_alter_reservation_state"),
        ("calls", "0003_exports"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
