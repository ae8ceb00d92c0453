"""Re-sync the role groups: permissions of the session and API-token models, axes lockouts
(admin unlocks) and the auditlog history (admin, dpo)."""

from django.db import migrations

from accounts.roles import migration_sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_sessions_tokens"),
        ("axes", "0010_accessattemptexpiration"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(migration_sync_roles, migrations.RunPython.noop)]
