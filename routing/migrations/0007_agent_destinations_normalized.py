"""Agent destinations are stored as the carrier dials them (routing.destinations).

Existing ones typed as people write numbers ("(305) 555-0199") are rewritten in E.164 and a
`SIP:` scheme in lower case. One that is neither a number nor a sip: address is left as it is:
guessing would send calls somewhere; the admin refuses to save that agent until staff fix it.
"""

from django.db import migrations, models

from routing.destinations import InvalidDestination, normalize_destination


def normalize_destinations(apps, schema_editor):
    Agent = apps.get_model("routing", "Agent")
    for agent in Agent.objects.only("pk", "destination").iterator():
        try:
            destination = normalize_destination(agent.destination)
        except InvalidDestination:
            continue
        if destination != agent.destination:
            Agent.objects.filter(pk=agent.pk).update(destination=destination)


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0006_agent_status_changes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="agent",
            name="destination",
            field=models.CharField(
                help_text=(
                    "Where a call is connected: a phone number, stored in E.164 (+13055550199; "
                    "(305) 555-0199 is saved as that), or a SIP address such as "
                    "sip:ada@example.com."
                ),
                max_length=255,
            ),
        ),
        migrations.RunPython(normalize_destinations, migrations.RunPython.noop, elidable=True),
    ]
