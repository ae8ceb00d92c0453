"""What each role may do, as Django permissions; the single source for the role groups.

``sync_role_groups`` writes these into the groups. Data migrations call it (with historical
models) whenever a new model brings permissions; ``manage.py sync_roles`` does the same by hand.
README's role table is written from this mapping.
"""

from __future__ import annotations

from typing import Any

# "app_label.codename" per role. ``*`` after an app label means every permission of that app.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    "agent": [
        "conversations.view_customer",
        "conversations.view_conversation",
        "conversations.change_conversation",
        "conversations.view_message",
        "conversations.add_message",
        "conversations.view_conversationevent",
        "accounts.view_team",
    ],
    "supervisor": [
        "conversations.view_customer",
        "conversations.change_customer",
        "conversations.view_conversation",
        "conversations.change_conversation",
        "conversations.view_message",
        "conversations.add_message",
        "conversations.view_conversationevent",
        "accounts.view_team",
        "accounts.change_team",
        "accounts.view_user",
    ],
    "admin": [
        "accounts.*",
        "conversations.*",
        "auth.view_group",
    ],
    "dpo": [
        "conversations.view_customer",
        "conversations.view_conversation",
        "conversations.view_message",
        "accounts.view_user",
    ],
}


def expand_role_permissions(permission_model: Any) -> dict[str, list[Any]]:
    """Resolve ``ROLE_PERMISSIONS`` to permission rows; unknown entries raise ``LookupError``."""
    resolved: dict[str, list[Any]] = {}
    for role, entries in ROLE_PERMISSIONS.items():
        rows: list[Any] = []
        for entry in entries:
            app_label, codename = entry.split(".", 1)
            qs = permission_model.objects.filter(content_type__app_label=app_label)
            found = list(qs) if codename == "*" else list(qs.filter(codename=codename))
            if not found:
                raise LookupError(f"role {role}: permission {entry} does not exist")
            rows.extend(found)
        resolved[role] = rows
    return resolved


def sync_role_groups(group_model: Any, permission_model: Any) -> None:
    """Create the four role groups and set exactly the permissions declared above."""
    for role, permissions in expand_role_permissions(permission_model).items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(permissions)


def ensure_permissions_exist(apps: Any) -> None:
    """Create permission rows inside a migration (Django only does it after ``migrate``)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None


def migration_sync_roles(apps: Any, schema_editor: Any) -> None:
    """RunPython entry point for data migrations."""
    ensure_permissions_exist(apps)
    sync_role_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
