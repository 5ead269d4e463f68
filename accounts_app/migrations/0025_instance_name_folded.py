from django.db import migrations, models

import accounts_app.models


def analyze_instances(apps, schema_editor):
    # PostgreSQL keeps statistics of an expression index's values only from the next
    # ANALYZE, which autovacuum runs after a tenth of the rows change: a steady
    # inventory might wait for ever. Without them the planner guesses that a name
    # prefix matches 25 instances, and the audit search walked down all the events
    # (0.8 s at a million) looking for theirs.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ANALYZE accounts_app_instance")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts_app", "0024_instance_filter_choices_by_seeks"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="instance",
            index=models.Index(accounts_app.models.Folded("name"), name="instance_name_folded"),
        ),
        migrations.RunPython(analyze_instances, migrations.RunPython.noop, elidable=True),
    ]
