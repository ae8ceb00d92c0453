"""The demo seed: users per role that can open /admin/, teams, conversations in every state."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import SlaTarget, TeamOpeningHours, User
from accounts.tests.helpers import login_verified
from conversations import dashboard
from conversations.models import Conversation, Customer

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_every_role_teams_and_conversations_in_every_state(settings, client):
    settings.DEBUG = True
    call_command("seed_demo", customers=25)
    for username in ("agent", "supervisor", "admin", "dpo"):
        user = User.objects.get(username=username)
        assert user.groups.filter(name=username).exists()
        # Staff roles other than agents need a second factor (issue 6): log in as after TOTP.
        login_verified(client, user)
        assert client.get("/admin/").status_code == 200, username
        client.logout()
    states = set(Conversation.objects.values_list("state", flat=True))
    assert states == {"bot", "waiting", "assigned", "closed"}
    assert Customer.objects.count() == 25
    # Every conversation carries customer messages in Portuguese.
    assert Conversation.objects.filter(messages__isnull=True).count() == 0
    # The SLA page has something to show: calendars, default targets, running clocks.
    assert TeamOpeningHours.objects.filter(team__slug="suporte").exists()
    assert SlaTarget.objects.filter(team=None).count() == 4
    queued = Conversation.objects.filter(state="waiting")
    assert queued.exists() and not queued.filter(first_response_due_at__isnull=True).exists()


def test_seed_demo_twice_does_not_duplicate(settings):
    settings.DEBUG = True
    call_command("seed_demo", customers=5)
    call_command("seed_demo", customers=5)
    assert Customer.objects.count() == 5
    assert User.objects.filter(username="agent").count() == 1


def test_seed_demo_is_refused_when_debug_is_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", customers=5)
    assert not User.objects.filter(username="agent").exists()


def test_seed_demo_gives_the_dashboard_something_to_show(settings):
    settings.DEBUG = True
    call_command("seed_demo", customers=30)
    admin = User.objects.get(username="admin")
    period = dashboard.Period(timezone.localdate() - timedelta(days=60), timezone.localdate())
    figures = dashboard.period_figures(user=admin, period=period)
    assert figures.csat.answered > 0 and figures.closed_by_bot > 0
    assert figures.first_response.p50 > 0 and figures.resolution.p50 > 0
    assert any(i.key for i in dashboard.volume_by_intent(user=admin, period=period))
    assert dashboard.escalation_reasons(user=admin, period=period)
