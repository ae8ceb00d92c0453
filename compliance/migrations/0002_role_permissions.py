"""Give the role groups their compliance permissions (accounts.roles: dpo, supervisor, admin)."""

from django.db import migrations

from accounts.roles import migration_sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0001_initial"),
        ("accounts", "0004_role_groups_security"),
        ("conversations", "0001_initial"),
    ]

    operations = [migrations.RunPython(migration_sync_roles, migrations.RunPython.noop)]
