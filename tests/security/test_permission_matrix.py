"""The permission matrix: every URL pattern × every role (plus anonymous) → the expected status.

How it works
------------
``url_patterns()`` walks the whole URLconf. Each pattern's parameters are filled with real
objects made in ``world`` (``PARAMS``), the URL is requested (GET, unless ``METHODS`` says
otherwise) by an anonymous client and by an agent, a supervisor, an admin and a DPO (each with
a verified second factor), and the statuses are compared with ``MATRIX``.

Admin pages of registered models need no entry: ``admin_expectation`` derives them from the
role's Django permissions (the role groups of ``accounts/roles.py``); list an admin route in
``MATRIX`` only when its ModelAdmin overrides ``has_*_permission``.

Adding a URL
------------
A new URL pattern without an entry fails ``test_every_url_pattern_has_a_matrix_entry`` with a
ready-to-paste line showing the statuses observed now. Check that they are the ones you mean
(anonymous must never see personal data; the DPO is not a console user…), then paste the line
into ``MATRIX``. A new path parameter needs a line in ``PARAMS`` too (the message says which).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Role, UserSession
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import login_verified, verified_device

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "agent", "supervisor", "admin", "dpo")
A = 302  # redirect (to log-in for anonymous users)
F = 403
N = 404
M = 405
U = 401

# route (as written in the URLconf, prefixes joined) → statuses for
# (anonymous, agent, supervisor, admin, dpo)
MATRIX: dict[str, tuple[int, int, int, int, int]] = {
    # operations: open by design (load balancer). /metrics answers by network and token, never
    # by role: this row is loopback without METRICS_TOKEN; see test_metrics_ignores_roles below.
    "healthz": (200, 200, 200, 200, 200),
    "readyz": (200, 200, 200, 200, 200),
    "metrics": (200, 200, 200, 200, 200),
    "i18n/setlang/": (A, A, A, A, A),
    # accounts
    "accounts/": (A, 200, 200, 200, 200),
    "accounts/login/": (200, A, A, A, A),
    "accounts/logout/": (M, M, M, M, M),
    "accounts/password/": (A, 200, 200, 200, 200),
    "accounts/2fa/setup/": (A, 200, 200, 200, 200),
    "accounts/2fa/verify/": (A, 200, 200, 200, 200),
    "accounts/2fa/backup-codes/": (A, M, M, M, M),
    "accounts/sessions/": (A, 200, 200, 200, 200),
    "accounts/sessions/<int:pk>/end/": (A, M, M, M, M),
    "accounts/sessions/end-others/": (A, M, M, M, M),
    "accounts/tokens/": (A, 200, 200, 200, 200),
    "accounts/tokens/<int:pk>/revoke/": (A, M, M, M, M),
    # whatsapp
    "webhooks/whatsapp/": (F, F, F, F, F),  # GET without Meta's verify token
    "media/<int:message_id>/": (A, N, N, N, N),  # the message has no stored file
    # compliance
    "privacidade/exportacoes/<str:token>/": (N, N, N, N, N),
    # the console (agents, supervisors, admins; never the DPO)
    "console/login/": (A, A, A, A, A),
    "console/logout/": (M, M, M, M, M),
    "console/": (A, 200, 200, 200, F),
    "console/c/<int:pk>/": (A, 200, 200, 200, F),
    "console/c/<int:pk>/timeline/": (A, 200, 200, 200, F),
    "console/c/<int:pk>/panel/": (A, 200, 200, 200, F),
    "console/c/<int:pk>/sidebar/": (A, 200, 200, 200, F),
    "console/c/<int:pk>/claim/": (A, M, M, M, F),
    "console/c/<int:pk>/assign/": (A, M, M, M, F),
    "console/c/<int:pk>/transfer/": (A, M, M, M, F),
    "console/c/<int:pk>/reply/": (A, M, M, M, F),
    "console/c/<int:pk>/template/": (A, M, M, M, F),
    "console/c/<int:pk>/note/": (A, M, M, M, F),
    "console/c/<int:pk>/priority/": (A, M, M, M, F),
    "console/c/<int:pk>/close/": (A, M, M, M, F),
    "console/partials/list/": (A, 200, 200, 200, F),
    "console/partials/row/<int:pk>/": (A, 204, 204, 204, F),  # not in the current list
    "console/partials/message/<int:pk>/": (A, 200, 200, 200, F),
    "console/partials/presence/": (A, F, 200, 200, F),
    # the dashboard: supervisors and admins only
    "console/dashboard/": (A, F, 200, 200, F),
    "console/dashboard/live/": (A, F, 200, 200, F),
    "console/dashboard/snapshot/": (A, F, 200, 200, F),
    "console/dashboard/export.csv": (A, F, 200, 200, F),
    # REST API (session or token; the DPO has no console API). Anonymous: 401 with
    # WWW-Authenticate: Bearer (the token class comes first). The schema and its docs page
    # are for the API's users only.
    "api/v1/schema/": (U, 200, 200, 200, F),
    "api/v1/docs/": (U, 200, 200, 200, F),
    "api/v1/conversations/": (U, 200, 200, 200, F),
    "api/v1/conversations/<int:pk>/": (U, 200, 200, 200, F),
    "api/v1/conversations/<int:pk>/claim/": (U, M, M, M, F),
    "api/v1/conversations/<int:pk>/assign/": (U, M, M, M, F),
    "api/v1/conversations/<int:pk>/transfer/": (U, M, M, M, F),
    "api/v1/conversations/<int:pk>/close/": (U, M, M, M, F),
    "api/v1/conversations/<int:pk>/priority/": (U, M, M, M, F),
    "api/v1/conversations/<int:pk>/messages/": (U, 200, 200, 200, F),
    "api/v1/conversations/<int:pk>/notes/": (U, M, M, M, F),
    "api/v1/customers/": (U, 400, 400, 400, F),  # a search term is required
    "api/v1/customers/<int:pk>/": (U, 200, 200, 200, F),
    "api/v1/canned-responses/": (U, 200, 200, 200, F),
    "api/v1/me/presence/": (U, 200, 200, 200, F),
    "api/v1/^.*$": (N, N, N, N, N),  # unknown API paths: JSON 404
    # the customer's-phone simulator (development and demo only: SIMULATOR_ENABLED)
    "simulator/": (200, 200, 200, 200, 200),
    "simulator/api/send": (M, M, M, M, M),
    "simulator/api/thread": (400, 400, 400, 400, 400),  # needs ?wa_id=
    "simulator/api/reset": (M, M, M, M, M),
    # the fault control (GET shows what is scripted; POST and DELETE script it)
    "simulator/api/faults": (200, 200, 200, 200, 200),
    "simulator/^graph/(?P<version>v\\d+\\.\\d+)/(?P<phone_number_id>\\d+)/messages$": (
        M,
        M,
        M,
        M,
        M,
    ),
    # media upload is POST-only (multipart with the bearer token, like Meta): GET is 405
    "simulator/^graph/(?P<version>v\\d+\\.\\d+)/(?P<phone_number_id>\\d+)/media$": (M, M, M, M, M),
    # the Graph API simulator wants the access token, like Meta
    "simulator/graph/media-download/<str:media_id>/": (U, U, U, U, U),
    "simulator/^graph/(?P<version>v\\d+\\.\\d+)/(?P<media_id>\\d+)$": (U, U, U, U, U),
    "simulator/^graph/(?P<version>v\\d+\\.\\d+)/(?P<waba_id>\\d+)/message_templates$": (
        U,
        U,
        U,
        U,
        U,
    ),
    # the admin site's own pages (model pages: admin_expectation)
    "admin/": (A, 200, 200, 200, 200),
    "admin/login/": (A, A, A, A, A),  # → /accounts/login/ (the one log-in page)
    "admin/logout/": (A, M, M, M, M),
    "admin/password_change/": (A, 200, 200, 200, 200),
    "admin/password_change/done/": (A, 200, 200, 200, 200),
    "admin/autocomplete/": (A, F, F, F, F),
    "admin/jsi18n/": (A, 200, 200, 200, 200),
    "admin/r/<path:content_type_id>/<path:object_id>/": (A, N, N, N, N),  # Team has no page
    # the app index (its regex lists the apps with admin pages: normalised, see route_key)
    "admin/<app_label>/": (A, 200, 200, 200, 200),
    "admin/(?P<url>.*)$": (A, N, N, N, N),
    # ModelAdmins that refuse more than the permissions say (has_*_permission overrides):
    # tokens are created by their owner, sessions by log-in, messages by the services;
    # compliance records are written by its workflows, and the incident register and
    # retention runs are kept (Res. CD/ANPD 15/2024 art. 10).
    "admin/accounts/usersession/add/": (A, F, F, F, F),
    "admin/accounts/apitoken/add/": (A, F, F, F, F),
    "admin/conversations/message/add/": (A, F, F, F, F),
    "admin/conversations/conversationnote/add/": (A, F, F, F, F),
    "admin/compliance/consentrecord/add/": (A, F, F, F, F),
    "admin/compliance/consentrecord/<path:object_id>/delete/": (A, F, F, F, F),
    "admin/compliance/legalhold/<path:object_id>/delete/": (A, F, F, F, F),
    "admin/compliance/servicerecordhold/add/": (A, F, F, F, F),
    "admin/compliance/servicerecordhold/<path:object_id>/delete/": (A, F, F, F, F),
    "admin/compliance/retentionrun/add/": (A, F, F, F, F),
    "admin/compliance/retentionrun/<path:object_id>/delete/": (A, F, F, F, F),
    "admin/compliance/incident/<path:object_id>/delete/": (A, F, F, F, F),
    # the access log: supervisors see only their teams' entries (this one is another team's)
    "admin/compliance/accesslogentry/<path:object_id>/change/": (A, F, A, 200, 200),
    "admin/compliance/accesslogentry/<path:object_id>/history/": (A, A, A, 200, 200),
    # the record of processing (LGPD Art. 37): the DPO's
    "admin/compliance/datasubjectrequest/registro-de-tratamento.<str:fmt>": (A, F, F, F, 200),
    "admin/compliance/incident/<int:pk>/comunicacao/": (A, F, F, 200, 200),
    # the user's password form: admins (change_user) only
    "admin/accounts/user/<id>/password/": (A, F, F, 200, F),
    # conversations open when customers write and leave through erasure/retention only
    "admin/conversations/conversation/add/": (A, F, F, F, F),
    "admin/conversations/conversation/<path:object_id>/delete/": (A, F, F, F, F),
    # the SLA page of the supervisors' teams (admins: every team)
    "admin/conversations/conversation/sla/": (A, F, 200, 200, F),
    # the customer-base import: supervisors and admins upload and read the rejected-rows report;
    # runs are never deleted by hand (retention)
    "admin/isp/contractimport/<int:pk>/relatorio.csv": (A, F, 200, 200, F),
    "admin/isp/contractimport/<path:object_id>/delete/": (A, F, F, F, F),
}

# Methods other than GET for a route (default GET).
METHODS: dict[str, str] = {}


@dataclass
class World:
    users: dict[str, Any]
    team: Any
    customer: Any
    conversation: Any
    message: Any
    session: UserSession
    token: Any
    objects: dict[str, Any]


# (route prefix, parameter name) → value, first match wins.
PARAMS: list[tuple[str, str, Callable[[World, str], Any]]] = [
    ("accounts/sessions/", "pk", lambda w, r: w.session.pk),
    ("accounts/tokens/", "pk", lambda w, r: w.token.pk),
    ("media/", "message_id", lambda w, r: w.message.pk),
    ("privacidade/exportacoes/", "token", lambda w, r: "token-inexistente"),
    ("console/partials/message/", "pk", lambda w, r: w.message.pk),
    ("console/", "pk", lambda w, r: w.conversation.pk),
    ("api/v1/conversations/", "pk", lambda w, r: w.conversation.pk),
    ("api/v1/customers/", "pk", lambda w, r: w.customer.pk),
    ("simulator/", "version", lambda w, r: settings.WHATSAPP_API_VERSION),
    ("simulator/", "phone_number_id", lambda w, r: settings.WHATSAPP_PHONE_NUMBER_IDS[0]),
    ("simulator/", "media_id", lambda w, r: "4242"),
    ("simulator/", "waba_id", lambda w, r: "100000000000010"),
    ("admin/r/", "content_type_id", lambda w, r: ContentType.objects.get_for_model(w.team).pk),
    ("admin/r/", "object_id", lambda w, r: w.team.pk),
    ("admin/", "app_label", lambda w, r: "accounts"),
    ("admin/compliance/", "fmt", lambda w, r: "json"),
    ("admin/compliance/incident/", "pk", lambda w, r: w.objects["compliance.incident"].pk),
    ("admin/isp/contractimport/", "pk", lambda w, r: w.objects["isp.contractimport"].pk),
    ("admin/", "url", lambda w, r: "nao-existe/"),
    ("admin/", "object_id", lambda w, r: _admin_object_id(w, r)),
    ("admin/", "id", lambda w, r: _admin_object_id(w, r)),
]


# --- URL walking ------------------------------------------------------------------------------


def url_patterns() -> Iterator[str]:
    """Every route of the URLconf, as written (prefixes joined), in resolution order."""

    def walk(patterns: list, prefix: str) -> Iterator[str]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern)

    seen: set[str] = set()
    for route in walk(get_resolver().url_patterns, ""):
        if route not in seen:
            seen.add(route)
            yield route


_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def route_params(route: str) -> list[str]:
    return [m.group(2) or m.group(3) for m in _PARAM.finditer(route)]


class MissingParam(LookupError):
    pass


def build_url(route: str, world: World) -> str:
    def value(name: str) -> str:
        for prefix, param, producer in PARAMS:
            if param == name and route.startswith(prefix):
                return str(producer(world, route))
        raise MissingParam(name)

    path = _PARAM.sub(lambda m: value(m.group(2) or m.group(3)), route)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("\\", "")
    return "/" + path


# --- Admin model pages ------------------------------------------------------------------------

_ADMIN_MODEL_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/(?P<rest>.*)$")


def _admin_model(route: str) -> type | None:
    match = _ADMIN_MODEL_ROUTE.match(route)
    if not match:
        return None
    for model in admin.site._registry:
        if (model._meta.app_label, model._meta.model_name) == (match["app"], match["model"]):
            return model
    return None


def _admin_object_id(world: World, route: str) -> Any:
    model = _admin_model(route)
    obj = world.objects.get(model._meta.label_lower) if model else None
    if obj is None and model is not None:
        obj = model._default_manager.order_by("pk").first()
    return obj.pk if obj is not None else 999999


def admin_expectation(route: str, world: World) -> tuple[int, ...] | None:
    """Statuses for a registered model's admin page, from each role's permissions."""
    model = _admin_model(route)
    if model is None:
        return None
    rest = _ADMIN_MODEL_ROUTE.match(route)["rest"]
    opts = model._meta
    exists = _admin_object_id(world, route) != 999999

    def status(user: Any) -> int:
        def can(action: str) -> bool:
            return user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")

        viewer = can("view") or can("change")
        if rest == "":
            return 200 if viewer else F
        if rest == "add/":
            return 200 if can("add") else F
        if rest == "<path:object_id>/":
            return A  # redirects to the change page
        if rest == "<path:object_id>/change/":
            return (200 if exists else A) if viewer else F  # missing: back to the index
        if rest == "<path:object_id>/history/":
            # Django looks the object up before checking permissions
            return (200 if viewer else F) if exists else A
        if rest == "<path:object_id>/historico/":
            # ispsupport.admin_history: the object's django-auditlog entries, like the change page
            return (200 if exists else A) if viewer else F
        if rest == "<path:object_id>/delete/":
            return (200 if exists else A) if can("delete") else F
        raise KeyError(rest)

    try:
        return (A, *(status(world.users[r]) for r in ROLES[1:]))
    except KeyError:
        return None  # a custom admin view: needs an explicit MATRIX entry


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def world(
    agent, supervisor, admin_member, dpo, customer, team_support, settings, tmp_path
) -> World:
    from conversations.models import Conversation
    from conversations.tests.factories import ConversationFactory, MessageFactory

    conversation = ConversationFactory(
        customer=customer,
        team=team_support,
        state=Conversation.State.ASSIGNED,
        assigned_agent=agent,
    )
    message = MessageFactory(conversation=conversation)
    token, _secret = account_services.api_token_create(
        user=agent, name="integração", scope="read", expires_in_days=30
    )
    for user in (agent, supervisor, admin_member, dpo):
        verified_device(user)
    other = UserFactory(username="outra-pessoa", role=Role.AGENT)
    session = UserSession.objects.create(user=other, key_hash="0" * 64, session_key="x")
    incident = django_apps.get_model("compliance", "Incident").objects.create(
        title="Teste de matriz",
        discovered_at=timezone.now(),
        description="Incidente fictício para a matriz de permissões.",
        data_nature="nenhum dado real",
    )
    from django.core.files.base import ContentFile

    from accounts.models import SlaTarget
    from conversations.models import CannedResponse
    from isp.models import ContractImport
    from whatsapp.models import MessageTemplate

    settings.MEDIA_ROOT = tmp_path  # the import's report is a stored file
    contract_import = ContractImport.objects.create(status=ContractImport.Status.DONE)
    contract_import.report.save("r.csv", ContentFile(b"linha;coluna;motivo\r\n"))
    objects = {
        "isp.contractimport": contract_import,
        "accounts.slatarget": SlaTarget.objects.create(
            team=team_support, priority=1, first_response_minutes=15, resolution_minutes=240
        ),
        "conversations.cannedresponse": CannedResponse.objects.create(
            team=team_support, shortcut="ola", title="Olá", body="Olá, {{nome}}!"
        ),
        "whatsapp.messagetemplate": MessageTemplate.objects.create(
            name="retomada", body_text="Olá! Podemos continuar o atendimento?"
        ),
        "compliance.incident": incident,
        "accounts.user": other,
        "accounts.team": team_support,
        "accounts.usersession": session,
        "accounts.apitoken": token,
        "conversations.customer": customer,
        "conversations.conversation": conversation,
        "conversations.message": message,
    }
    return World(
        users={"agent": agent, "supervisor": supervisor, "admin": admin_member, "dpo": dpo},
        team=team_support,
        customer=customer,
        conversation=conversation,
        message=message,
        session=session,
        token=token,
        objects=objects,
    )


class RoleClients:
    """One client per role, logged in with a verified second factor (re-logged in if a page
    ended the session)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.clients: dict[str, Client] = {}

    def get(self, role: str) -> Client:
        client = self.clients.get(role)
        if client is None:
            client = self.clients[role] = Client()
        if role != "anonymous":
            cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
            if cookie is None or not cookie.value:
                login_verified(client, self.world.users[role])
        return client


def observe(route: str, world: World, clients: RoleClients) -> tuple[int, ...]:
    url = build_url(route, world)
    method = METHODS.get(route, "GET").lower()
    return tuple(
        getattr(clients.get(role), method)(url, secure=False).status_code for role in ROLES
    )


_APP_INDEX = re.compile(r"^admin/\^\(\?P<app_label>[^)]*\)/\$$")


def route_key(route: str) -> str:
    """The MATRIX key of a route: itself, except the admin app index, whose regex changes
    whenever an app gains its first admin page."""
    return "admin/<app_label>/" if _APP_INDEX.match(route) else route


def expected_for(route: str, world: World) -> tuple[int, ...] | None:
    if route_key(route) in MATRIX:
        return MATRIX[route_key(route)]
    return admin_expectation(route, world)


# --- Tests ------------------------------------------------------------------------------------


def test_every_url_pattern_has_a_matrix_entry(world):
    clients = RoleClients(world)
    missing: list[str] = []
    for route in url_patterns():
        if expected_for(route, world) is not None:
            continue
        try:
            observed = observe(route, world, clients)
        except MissingParam as exc:
            missing.append(
                f"  {route!r}: needs a value for parameter <{exc}>: add a line to PARAMS, e.g.\n"
                f'    ("{route.split("<")[0]}", "{exc}", lambda w, r: <a real object>.pk),'
            )
            continue
        missing.append(
            f"    {route_key(route)!r}: {observed},  # observed now: check before pasting"
        )
    assert not missing, (
        "URL patterns without an entry in tests/security/test_permission_matrix.py MATRIX.\n"
        f"Statuses are for {ROLES}. Paste these lines into MATRIX once you have checked that "
        "each status is the intended one:\n" + "\n".join(missing)
    )


def test_every_role_gets_the_expected_status_on_every_url(world):
    clients = RoleClients(world)
    mismatches: list[str] = []
    for route in url_patterns():
        expected = expected_for(route, world)
        if expected is None:
            continue  # reported by the test above
        try:
            url = build_url(route, world)
        except MissingParam as exc:
            mismatches.append(f"  {route!r}: no value for <{exc}> in PARAMS")
            continue
        assert resolve(url.split("?")[0]) is not None
        observed = observe(route, world, clients)
        if observed != tuple(expected):
            diff = ", ".join(
                f"{role}: expected {e} got {o}"
                for role, e, o in zip(ROLES, expected, observed, strict=True)
                if e != o
            )
            mismatches.append(f"  {route!r} ({url}): {diff}")
    assert not mismatches, "Permission matrix mismatches:\n" + "\n".join(mismatches)


def test_matrix_has_no_stale_entries():
    routes = set(url_patterns())
    stale = sorted(set(MATRIX) - {route_key(r) for r in routes})
    assert not stale, f"MATRIX entries for routes that no longer exist: {stale}"


def test_metrics_ignores_roles_only_the_network_and_the_scrape_token_count(world, settings):
    """No session opens /metrics where the network or the token refuses it, not even an admin's."""
    clients = RoleClients(world)

    def statuses(**extra: Any) -> tuple[int, ...]:
        return tuple(clients.get(role).get("/metrics", **extra).status_code for role in ROLES)

    assert statuses(REMOTE_ADDR="203.0.113.9") == (F, F, F, F, F)
    settings.METRICS_TOKEN = "scrape-token-for-the-matrix"
    assert statuses() == (U, U, U, U, U)
    assert statuses(HTTP_AUTHORIZATION="Bearer scrape-token-for-the-matrix") == (
        200,
        200,
        200,
        200,
        200,
    )
