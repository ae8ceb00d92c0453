"""Create the role groups (agent, supervisor, admin, dpo) with the permissions in accounts.roles."""

from django.db import migrations

from accounts.roles import migration_sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("conversations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(migration_sync_roles, migrations.RunPython.noop)]
