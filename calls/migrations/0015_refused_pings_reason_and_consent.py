"""Refused pings (outcome refused, with the contract's reason code), and the consent evidence a
ping carried, each in a field of its own. The call records can be large: their indexes are built
without blocking the pings' inserts."""

from django.db import migrations, models

from config.migration_operations import AddIndexWithoutBlockingWrites


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("calls", "0014_settlement_labels"),
        ("routing", "0012_do_not_call_list"),
        ("vendors", "0003_ping_policies"),
    ]

    operations = [
        migrations.AddField(
            model_name="callrecord",
            name="jornaya_leadid",
            field=models.CharField(
                blank=True, db_default="", default="", max_length=36, verbose_name="Jornaya LeadiD"
            ),
        ),
        migrations.AddField(
            model_name="callrecord",
            name="reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("no_agent", "no agent free"),
                    ("concurrency_cap", "concurrency cap"),
                    ("hourly_cap", "hourly cap"),
                    ("daily_cap", "daily cap"),
                    ("closed", "closed (hours of operation)"),
                    ("duplicate_caller", "duplicate caller"),
                    ("do_not_call", "do not call"),
                    ("consent_missing", "consent missing"),
                ],
                db_default="", default="", max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="callrecord",
            name="trustedform_cert_url",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                max_length=100,
                verbose_name="TrustedForm certificate URL",
            ),
        ),
        migrations.AlterField(
            model_name="callrecord",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("reserved", "Reserved"),
                    ("repeat", "Repeat"),
                    ("no_agent", "no agent"),
                    ("rejected", "Rejected"),
                    ("connected", "Connected"),
                    ("completed", "Completed"),
                    ("expired", "Expired"),
                    ("refused", "Refused"),
                ],
                max_length=16,
            ),
        ),
        AddIndexWithoutBlockingWrites(
            model_name="callrecord",
            index=models.Index(
                condition=models.Q(("trustedform_cert_url", ""), _negated=True),
                fields=["trustedform_cert_url"],
                name="callrecord_trustedform",
            ),
        ),
        AddIndexWithoutBlockingWrites(
            model_name="callrecord",
            index=models.Index(
                condition=models.Q(("jornaya_leadid", ""), _negated=True),
                fields=["jornaya_leadid"],
                name="callrecord_jornaya",
            ),
        ),
        AddIndexWithoutBlockingWrites(
            model_name="callrecord",
            index=models.Index(
                condition=models.Q(("outcome", "connected")),
                fields=["vendor", "state"],
                name="callrecord_in_progress",
            ),
        ),
    ]
