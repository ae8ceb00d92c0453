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
        # The bot's decisions on their conversations (intent, sentiment, why it escalated).
        "bot.view_botdecision",
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
        # Their teams' calendars and SLA targets (rows limited to their teams in admin).
        "accounts.view_teamopeninghours",
        "accounts.add_teamopeninghours",
        "accounts.change_teamopeninghours",
        "accounts.delete_teamopeninghours",
        "accounts.view_teamholiday",
        "accounts.add_teamholiday",
        "accounts.change_teamholiday",
        "accounts.delete_teamholiday",
        "accounts.view_slatarget",
        "accounts.add_slatarget",
        "accounts.change_slatarget",
        "accounts.delete_slatarget",
        # Who opened their teams' customers' data (rows filtered to their teams in admin).
        "compliance.view_accesslogentry",
        # The bot: knowledge base, escalation thresholds and routes; its decisions.
        "bot.view_knowledgeentry",
        "bot.add_knowledgeentry",
        "bot.change_knowledgeentry",
        "bot.view_botpolicy",
        "bot.change_botpolicy",
        "bot.view_escalationrule",
        "bot.change_escalationrule",
        "bot.view_intentroute",
        "bot.add_intentroute",
        "bot.change_intentroute",
        "bot.view_botdecision",
        # Canned responses for their teams (and global ones).
        "conversations.view_cannedresponse",
        "conversations.add_cannedresponse",
        "conversations.change_cannedresponse",
        "conversations.delete_cannedresponse",
        # WhatsApp templates offered outside the 24-hour window.
        "whatsapp.view_messagetemplate",
        "whatsapp.add_messagetemplate",
        "whatsapp.change_messagetemplate",
        # The ISP's contracts and bills (the demo ERP's tables, copies of the real ERP's),
        # visit windows and booked visits, trust unlocks granted by the bot.
        "isp.view_contract",
        "isp.view_contractphone",
        "isp.view_invoice",
        "isp.view_visitwindow",
        "isp.add_visitwindow",
        "isp.change_visitwindow",
        "isp.view_serviceorder",
        "isp.change_serviceorder",
        "isp.view_trustunlock",
        # Outages (register, attached conversations, detection alerts) and campaigns.
        "isp.view_outage",
        "isp.add_outage",
        "isp.change_outage",
        "isp.view_outageconversation",
        "isp.view_outagealert",
        "isp.change_outagealert",
        "isp.view_campaign",
        "isp.add_campaign",
        "isp.change_campaign",
        "isp.view_campaignrecipient",
        # The customer-base import (upload the ERP export, follow it, download the report).
        "isp.view_contractimport",
        "isp.add_contractimport",
    ],
    "admin": [
        "accounts.*",
        "conversations.*",
        # The bot: everything supervisors do, plus deleting knowledge entries and routes. The
        # policy is a single row (no add/delete) and decisions are a read-only record.
        "bot.view_knowledgeentry",
        "bot.add_knowledgeentry",
        "bot.change_knowledgeentry",
        "bot.delete_knowledgeentry",
        "bot.view_botpolicy",
        "bot.change_botpolicy",
        "bot.view_escalationrule",
        "bot.add_escalationrule",
        "bot.change_escalationrule",
        "bot.delete_escalationrule",
        "bot.view_intentroute",
        "bot.add_intentroute",
        "bot.change_intentroute",
        "bot.delete_intentroute",
        "bot.view_botdecision",
        "whatsapp.view_webhookevent",
        "whatsapp.view_earlystatus",
        "whatsapp.view_messagetemplate",
        "whatsapp.add_messagetemplate",
        "whatsapp.change_messagetemplate",
        "whatsapp.delete_messagetemplate",
        # Everything in the demo ERP; the bot's records of identification are not editable.
        "isp.view_contract",
        "isp.add_contract",
        "isp.change_contract",
        "isp.delete_contract",
        "isp.view_contractphone",
        "isp.add_contractphone",
        "isp.change_contractphone",
        "isp.delete_contractphone",
        "isp.view_invoice",
        "isp.add_invoice",
        "isp.change_invoice",
        "isp.delete_invoice",
        "isp.view_visitwindow",
        "isp.add_visitwindow",
        "isp.change_visitwindow",
        "isp.delete_visitwindow",
        "isp.view_serviceorder",
        "isp.change_serviceorder",
        "isp.view_trustunlock",
        # Outages (register, attached conversations, detection alerts) and campaigns.
        "isp.view_outage",
        "isp.add_outage",
        "isp.change_outage",
        "isp.view_outageconversation",
        "isp.view_outagealert",
        "isp.change_outagealert",
        "isp.view_campaign",
        "isp.add_campaign",
        "isp.change_campaign",
        "isp.view_campaignrecipient",
        "isp.delete_campaign",
        "isp.view_contractimport",
        "isp.add_contractimport",
        "auth.view_group",
        # Log-in lockouts (django-axes): see them and unlock by deleting the attempt.
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
        "axes.view_accessfailurelog",
        "axes.view_accesslog",
        # Change history (django-auditlog).
        "auditlog.view_logentry",
        # Compliance oversight (the DPO runs requests, erasure and incidents).
        "compliance.view_accesslogentry",
        "compliance.view_incident",
        "compliance.view_retentionrun",
    ],
    "dpo": [
        "conversations.view_customer",
        "conversations.view_conversation",
        "conversations.view_message",
        "accounts.view_user",
        "auditlog.view_logentry",
        # Requests, exports, erasure, consent ledger, legal holds, retained service records,
        # incidents, retention runs; the access log is view-only for everyone (no other perms).
        "compliance.*",
    ],
}


def expand_role_permissions(permission_model: Any, *, strict: bool = True) -> dict[str, list[Any]]:
    """Resolve ``ROLE_PERMISSIONS`` to permission rows; unknown entries raise ``LookupError``.

    ``strict=False`` (data migrations) skips entries whose model does not exist yet at that
    point of the migration graph: a later migration that creates the model re-syncs.
    """
    resolved: dict[str, list[Any]] = {}
    for role, entries in ROLE_PERMISSIONS.items():
        rows: list[Any] = []
        for entry in entries:
            app_label, codename = entry.split(".", 1)
            qs = permission_model.objects.filter(content_type__app_label=app_label)
            found = list(qs) if codename == "*" else list(qs.filter(codename=codename))
            if not found and strict:
                raise LookupError(f"role {role}: permission {entry} does not exist")
            rows.extend(found)
        resolved[role] = rows
    return resolved


def sync_role_groups(group_model: Any, permission_model: Any, *, strict: bool = True) -> None:
    """Create the four role groups and set exactly the permissions declared above."""
    for role, permissions in expand_role_permissions(permission_model, strict=strict).items():
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
    sync_role_groups(
        apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), strict=False
    )
