"""Labels in words (TTL seconds, wrap-up seconds) and statuses in lower case, and TX 2 before
TX 10: a collation that compares the digits in names as numbers (PostgreSQL's ICU; SQLite gets
the same rule on each connection, routing.apps)."""

from django.db import migrations, models


# PostgreSQL only (SQLite has no CREATE COLLATION): Django's CreateCollation checks the database
# going forwards but not backwards.
def create_collation(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE COLLATION IF NOT EXISTS natural_sort (provider = icu, locale = 'und-u-kn-true')"
        )


def drop_collation(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP COLLATION IF EXISTS natural_sort")


class Migration(migrations.Migration):
    dependencies = [("routing", "0009_agent_whisper_and_waiting_callers")]

    operations = [
        migrations.RunPython(create_collation, drop_collation),
        migrations.AlterField(
            model_name='agent',
            name='wrap_up_seconds',
            field=models.PositiveIntegerField(default=0, help_text='Seconds after a call ends before the agent is offered again.', verbose_name='wrap-up seconds'),
        ),
        migrations.AlterField(
            model_name='reservation',
            name='ttl_seconds',
            field=models.PositiveIntegerField(verbose_name='TTL seconds'),
        ),
        migrations.AlterField(
            model_name='agent',
            name='status',
            field=models.CharField(choices=[('available', 'available'), ('offline', 'offline')], default='available', max_length=16),
        ),
        migrations.AlterField(
            model_name='agentstatuschange',
            name='from_status',
            field=models.CharField(choices=[('available', 'available'), ('offline', 'offline')], max_length=16),
        ),
        migrations.AlterField(
            model_name='agentstatuschange',
            name='to_status',
            field=models.CharField(choices=[('available', 'available'), ('offline', 'offline')], max_length=16),
        ),
        migrations.AlterField(
            model_name='reservation',
            name='status',
            field=models.CharField(choices=[('active', 'active'), ('connected', 'connected'), ('expired', 'expired'), ('released', 'released')], default='active', max_length=16),
        ),
    ]
