"""Schema-driven test: schemathesis generates requests for every operation of the OpenAPI
schema and no answer may be a server error. Runs against the real WSGI application (in the
test's database transaction), authenticated with a supervisor's write token."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings

from conversations.tests.factories import ConversationFactory, MessageFactory


@pytest.fixture
def api_schema(db, api_headers, settings):
    from ispsupport.wsgi import application

    settings.RATE_LIMIT_API = "1000000/60"
    # The WSGI app is called directly (not through Django's test client), so Django would close
    # the connection at the end of each request, inside the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        # The schema is served to the API's users only: read it with the same token.
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/", application, headers=api_headers[0])
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_headers(supervisor, agent, team_support, team_billing):
    from accounts.services import api_token_create

    _token, secret = api_token_create(
        user=supervisor, name="schemathesis", scope="write", expires_in_days=1
    )
    ids = []
    for team in (team_support, team_billing):
        waiting = ConversationFactory(team=team, state="waiting")
        MessageFactory(conversation=waiting)
        ids.append(waiting.pk)
        mine = ConversationFactory(team=team, state="assigned", assigned_agent=supervisor)
        MessageFactory(conversation=mine)
        ids.append(mine.pk)
    return {"Authorization": f"Bearer {secret}"}, ids


def _check(case, headers, ids, statuses: list[int]) -> None:
    if case.path_parameters and "id" in case.path_parameters:
        # Half of the cases aim at conversations that exist, so the operations run for real.
        value = case.path_parameters["id"]
        if isinstance(value, int) and value % 2 == 0:
            case.path_parameters["id"] = ids[value % len(ids)]
    response = case.call(headers=headers)
    statuses.append(response.status_code)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert {"code", "message"} <= set(body), body


def test_no_operation_answers_a_server_error(api_schema, api_headers):
    """Every operation, with generated path, query and body values (schemathesis strategies
    driven by hypothesis; ``schemathesis.pytest.from_fixture`` does not run on pytest 9)."""
    headers, ids = api_headers
    statuses: list[int] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case):
            _check(case, headers, ids, statuses)

        run()
    # The generated input reached the operations, not only the validation layer.
    assert sum(200 <= code < 300 for code in statuses) >= 20, sorted(set(statuses))
