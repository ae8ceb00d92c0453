"""The named cast every test can ask for: agent, supervisor, admin_member, dpo, customer…

Celery runs eagerly in tests (tasks execute inline and their errors surface), whatever broker
the environment names. With REDIS_URL set the cache and channel layer are the real Redis.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from accounts.models import Role


@pytest.fixture(autouse=True)
def _celery_eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True
    from ispsupport.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def _graph_api_nowhere(settings):
    """Outbox deliveries in tests go nowhere unless a test starts the Graph simulator.

    The default points at the developer's own ``make run`` (port 8000); a test that forgets the
    simulator must fail on a closed port, not talk to a running demo.
    """
    settings.WHATSAPP_API_BASE_URL = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _clean_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def team_support(db):
    from accounts.tests.factories import TeamFactory

    return TeamFactory(slug="suporte", name="Suporte técnico")


@pytest.fixture
def team_billing(db):
    from accounts.tests.factories import TeamFactory

    return TeamFactory(slug="financeiro", name="Financeiro")


@pytest.fixture
def agent(db, team_support):
    from accounts.tests.factories import UserFactory

    return UserFactory(username="agente", role=Role.AGENT, teams=[team_support])


@pytest.fixture
def other_agent(db, team_billing):
    from accounts.tests.factories import UserFactory

    return UserFactory(username="agente-financeiro", role=Role.AGENT, teams=[team_billing])


@pytest.fixture
def supervisor(db, team_support, team_billing):
    from accounts.tests.factories import UserFactory

    return UserFactory(
        username="supervisora", role=Role.SUPERVISOR, teams=[team_support, team_billing]
    )


@pytest.fixture
def admin_member(db):
    from accounts.tests.factories import UserFactory

    return UserFactory(username="administrador", role=Role.ADMIN)


@pytest.fixture
def dpo(db):
    from accounts.tests.factories import UserFactory

    return UserFactory(username="encarregado", role=Role.DPO)


@pytest.fixture
def customer(db):
    from conversations.tests.factories import CustomerFactory

    return CustomerFactory(wa_id="5511987654321", phone_e164="+5511987654321", name="Ana Souza")


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
