"""The role groups get the outage and campaign permissions declared in accounts/roles.py."""

from django.db import migrations

from accounts.roles import migration_sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("isp", "0003_outages_alerts_campaigns"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(migration_sync_roles, migrations.RunPython.noop)]
