"""Give the roles their bot and WhatsApp-template permissions (see accounts.roles)."""

from django.db import migrations

from accounts.roles import migration_sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_role_groups_security"),
        ("bot", "0002_seed_policy_and_knowledge"),
        ("whatsapp", "0002_encrypt_webhook_body"),
        ("compliance", "0002_role_permissions"),
    ]

    operations = [migrations.RunPython(migration_sync_roles, migrations.RunPython.noop)]
