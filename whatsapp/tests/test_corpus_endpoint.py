"""Every file of the public payload corpus through the real endpoint, signed; and fuzzing.

Valid envelopes get 200 and their messages and statuses land; the invalid file gets 400;
nothing raises. Then hypothesis throws mutated and random bodies at the endpoint: never a 500,
never a conversation left without its message.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from conversations.models import Conversation, Message
from whatsapp import inbound
from whatsapp.models import EarlyStatus, WebhookEvent
from whatsapp.parsing import STORED_KINDS, PayloadError, parse_envelope
from whatsapp.testing import signed_post
from whatsapp.tests.test_parsing import corpus_dir

pytestmark = pytest.mark.django_db

CORPUS = corpus_dir()
FILES = sorted(CORPUS.rglob("*.json"))


def _phone_number_ids(data: object) -> list[str]:
    """Every metadata.phone_number_id of the body (so the test serves the file's numbers)."""
    ids: list[str] = []
    entries = data.get("entry") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            if isinstance(metadata, dict) and metadata.get("phone_number_id"):
                ids.append(str(metadata["phone_number_id"]))
    return ids or ["100000000000001"]


def _process_all() -> None:
    for event_id in WebhookEvent.objects.order_by("pk").values_list("pk", flat=True):
        inbound.event_process(event_id=event_id)


def test_the_corpus_is_there():
    assert len(FILES) >= 200, f"expected the 222-file corpus under {CORPUS}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_file_through_the_endpoint(client, settings, path: Path):
    raw = path.read_bytes()
    try:
        envelope = parse_envelope(raw)
    except PayloadError as exc:
        response = signed_post(client, raw)
        assert response.status_code == 400
        assert response.json() == {"error": exc.reason}
        assert WebhookEvent.objects.count() == 0
        return

    settings.WHATSAPP_PHONE_NUMBER_IDS = _phone_number_ids(json.loads(raw))
    response = signed_post(client, raw)
    assert response.status_code == 200
    _process_all()
    event = WebhookEvent.objects.get()
    assert event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED)
    assert "failed" not in event.note, event.note

    for change in envelope.changes:
        if change.field != "messages":
            continue
        for message in change.messages:
            identified = (
                message.from_wa_id
                or message.from_user_id
                or (message.contact and (message.contact.wa_id or message.contact.user_id))
            )
            if message.kind in STORED_KINDS and identified:
                stored = Message.objects.filter(wamid=message.wamid[:191]).first()
                assert stored is not None, f"{message.kind} {message.wamid} was not stored"
                assert stored.type == message.kind
        for status in change.statuses:
            if status.status not in ("sent", "delivered", "read", "played", "failed"):
                continue
            assert (
                EarlyStatus.objects.filter(wamid=status.wamid[:191], status=status.status).exists()
                or Message.objects.filter(wamid=status.wamid[:191]).exists()
            )
    # Never half a conversation: every conversation holds at least one message.
    assert not Conversation.objects.filter(messages__isnull=True).exists()


# --- property-based: mutated corpus files and random JSON -----------------------------------

_ENVELOPES = []
for _path in FILES:
    try:
        _data = json.loads(_path.read_bytes())
        parse_envelope(_data)
    except (ValueError, PayloadError):
        continue
    _ENVELOPES.append(_data)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated_envelopes(draw):
    original = draw(st.sampled_from(_ENVELOPES))
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        else:
            parent[path[-1]] = draw(json_values)
    return data


def _assert_no_half_written_state() -> None:
    assert not Conversation.objects.filter(messages__isnull=True).exists()


@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=mutated_envelopes())
def test_mutated_payloads_never_500(client, settings, payload):
    settings.WHATSAPP_PHONE_NUMBER_IDS = _phone_number_ids(payload)
    response = signed_post(client, payload)
    assert response.status_code in (200, 400)
    _process_all()
    _assert_no_half_written_state()


@hsettings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=json_values | st.binary(max_size=200))
def test_random_bodies_never_500(client, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = signed_post(client, raw)
    assert response.status_code in (200, 400)
    _process_all()
    _assert_no_half_written_state()
