"""Create the three role groups with their permissions, the default approval
policy, and the audit chain's head row."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# A copy of accounts_app.roles.GROUP_PERMISSIONS as it was when this ran:
# migrations must not change meaning when the code moves on.
GROUP_PERMISSIONS = {
    "Requesters": ["request_account"],
    "Approvers": ["approve_request", "request_account", "view_everything"],
    "Auditors": ["view_everything"],
}

DEFAULT_APPROVALS = {"RoleReadOnly": 1, "RoleReadWrite": 1, "RoleRepl": 2}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    app_config = apps.get_app_config("accounts_app")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="accounts_app", codename__in=codenames)
        )

    ApprovalPolicy = apps.get_model("accounts_app", "ApprovalPolicy")
    for privilege, count in DEFAULT_APPROVALS.items():
        ApprovalPolicy.objects.get_or_create(
            account_privilege=privilege, defaults={"approvals_required": count}
        )

    AuditChainHead = apps.get_model("accounts_app", "AuditChainHead")
    AuditChainHead.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts_app", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
