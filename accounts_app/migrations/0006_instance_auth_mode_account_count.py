"""Instance facts after the API model was corrected (docs/alibaba-api.md).

- ``vpc_auth_mode`` keeps its stored values. They are DescribeInstanceAttribute's own
  word, copied as the API gave it; only its reading was backwards ("Open" was taken for
  password-free, it means a password is required). The reading lives in code
  (``Instance.password_free``), so every stored row reads right once this is deployed;
  flipping the values would make them wrong. Only the label changes.
- ``account_count`` counted every account DescribeAccounts listed, the built-in Super
  accounts included, so it overstates by one or two the number that the limit of 18
  applies to. Nothing stored says how many of each there were: the count becomes unknown
  (shown as "?", and the pre-flight asks the API live) until the next sync writes it.
"""

from django.db import migrations, models


def forget_account_counts(apps, schema_editor):
    Instance = apps.get_model("accounts_app", "Instance")
    Instance.objects.exclude(account_count=None).update(account_count=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts_app", "0005_request_finished_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="instance",
            name="vpc_auth_mode",
            field=models.CharField(
                blank=True, max_length=16, verbose_name="VPC authentication mode"
            ),
        ),
        migrations.RunPython(forget_account_counts, migrations.RunPython.noop),
    ]
