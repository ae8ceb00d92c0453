"""Role groups are created by migration with the permissions declared in accounts.roles."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction

from accounts.models import Role, User
from accounts.roles import ROLE_PERMISSIONS, expand_role_permissions

pytestmark = pytest.mark.django_db


def test_every_role_group_exists_with_exactly_its_declared_permissions():
    expected = expand_role_permissions(Permission)
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLE_PERMISSIONS)
    for role, perms in expected.items():
        group = Group.objects.get(name=role)
        assert set(group.permissions.all()) == set(perms), role


def test_agent_may_view_but_not_delete_conversations(agent):
    assert agent.has_perm("conversations.view_conversation")
    assert not agent.has_perm("conversations.delete_conversation")
    assert not agent.has_perm("accounts.change_user")


def test_dpo_cannot_change_conversations(dpo):
    assert dpo.has_perm("conversations.view_customer")
    assert not dpo.has_perm("conversations.change_conversation")


def test_admin_role_manages_users(admin_member):
    assert admin_member.has_perm("accounts.change_user")


def test_has_role_reflects_groups(agent, supervisor):
    assert agent.has_role(Role.AGENT) and not agent.has_role(Role.SUPERVISOR)
    assert supervisor.is_agent


def test_username_and_email_are_unique_ignoring_case(agent):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="AGENTE", email="x@example.test")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="outro", email=agent.email.upper())


def test_user_primary_key_is_a_uuid(agent):
    assert len(str(agent.pk)) == 36
