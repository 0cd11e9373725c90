"""TX 2 before TX 10: a collation that compares the digits in names as numbers (PostgreSQL's ICU;
SQLite gets the same rule on each connection, routing.apps)."""

from django.contrib.postgres.operations import CreateCollation
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("routing", "0008_one_live_hold_per_vendor_caller")]

    operations = [
        CreateCollation("natural_sort", provider="icu", locale="und-u-kn-true"),
    ]
