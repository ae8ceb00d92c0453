"""The role groups get the customer-base import permissions declared in accounts/roles.py."""

from django.db import migrations

from accounts.roles import migration_sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("isp", "0005_contract_import"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(migration_sync_roles, migrations.RunPython.noop)]
