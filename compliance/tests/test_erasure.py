"""Erasure leaves nothing behind (issue 7's verification test).

A customer is created through the real webhook flow (signed POSTs to /webhooks/whatsapp/ with
text and media messages; the bot decides; the media is downloaded from the Graph simulator; an
agent writes a note; the customer asks for and gets an export). Then they ask for erasure on
WhatsApp. Afterwards every row of every model (all fields, decrypted through the ORM), every
file in the media storage and every cache entry is searched for the subject's name, phone in
every spelling, wa_id, BSUID, CPF and message texts: none may remain, except in the legal-hold
service record, which holds no message text.

Data at rest is also read the way someone holding the database and the disk (and the keys)
would: every cell of every table by raw SQL, with every encrypted token decrypted, and every
stored file decrypted. Before the erasure nothing personal is readable without decrypting;
after it, nothing decrypts to the subject's data and no blind index still points at them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import connection

from compliance.models import DataSubjectRequest, LegalHold, ServiceRecordHold
from compliance.services import (
    access_log_record,
    consent_grant,
    dsr_detect_and_open,
    erasure_start,
    export_create,
)
from conversations import services as conv_services
from conversations.identity import customers_by_identity, identity_index
from conversations.models import Customer, Message
from ispsupport import crypto, filecrypt
from whatsapp.testing import envelope, new_wamid, signed_post, text_message
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db(transaction=False)

NAME = "Joaquina Vasconcelos Brandão"
WA_ID = "551187651234"  # an old-format mobile (no 9th digit): the canonical phone gains it
PHONE_SPELLINGS = ["5511987651234", "551187651234", "11987651234", "1187651234", "987651234"]
BSUID = "BR.1234567890ABCDEFJOAQUINA"
CPF = "52998224725"
TEXTS = [
    "Minha fibra caiu desde ontem na Rua das Acácias Imaginárias 4321",
    "Foto do roteador piscando vermelho no quarto da Joaquina",
    "Obs interna: cliente informou que trabalha de casa como tradutora juramentada",
]
PHOTO = b"\xff\xd8\xff\xe0 JOAQUINA-ROUTER-PHOTO-BYTES \xff\xd9"


def _contacts():
    return [{"profile": {"name": NAME}, "wa_id": WA_ID, "user_id": BSUID}]


def _post(client, message):
    body = envelope(messages=[message], contacts=_contacts())
    response = signed_post(client, body)
    assert response.status_code == 200


def _image_message(media_id: str) -> dict:
    return {
        "from": WA_ID,
        "id": new_wamid(),
        "timestamp": str(int(time.time())),
        "type": "image",
        "image": {
            "id": media_id,
            "mime_type": "image/jpeg",
            "sha256": base64.b64encode(hashlib.sha256(PHOTO).digest()).decode(),
            "caption": TEXTS[1],
        },
    }


def _build_subject(client, graph, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, text_message(wa_id=WA_ID, text=TEXTS[0]))
    media_id = graph.add_media(PHOTO, "image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, _image_message(media_id))
    customer = customers_by_identity(phone="+5511987651234").get()
    Customer.objects.filter(pk=customer.pk).update(cpf=CPF)  # as the ERP look-up would
    customer.refresh_from_db()
    conversation = customer.conversations.get()
    conv_services.note_add(conversation=conversation, author=agent, text=TEXTS[2])
    consent_grant(customer=customer, purpose="marketing", channel="whatsapp", proof={"wamid": "x"})
    access_log_record(
        user=agent, customer_id=customer.pk, action="view_conversation", ip="10.1.2.3"
    )
    cache.set(f"customer:{customer.pk}:profile", {"name": NAME, "phone": customer.phone_e164})
    return customer


def _dump_database() -> list[tuple[str, str]]:
    rows = []
    for model in apps.get_models(include_auto_created=True):
        fields = [f for f in model._meta.concrete_fields]
        for obj in model._base_manager.all().iterator():
            values = []
            for f in fields:
                value = getattr(obj, f.attname)
                if isinstance(value, (dict, list)):
                    value = json.dumps(value, ensure_ascii=False)
                values.append(str(value))
            rows.append((model._meta.label, " | ".join(values)))
    return rows


def _dump_storage(root) -> list[tuple[str, str]]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                found.append((path, name + " " + fh.read().decode("latin-1")))
    return found


def _cell(value) -> str:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def _dump_raw_database(*, decrypt: bool) -> list[tuple[str, str]]:
    """Every cell of every table as SQL returns it; with ``decrypt``, each Fernet token is
    followed by what it decrypts to (what someone with the database and the keys reads)."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for record in cursor.fetchall():
                cells = []
                for value in record:
                    text = _cell(value)
                    cells.append(text)
                    if decrypt and crypto.looks_encrypted(text):
                        cells.append(crypto.decrypt_str(text))
                rows.append((f"table {table}", " | ".join(cells)))
    return rows


def _dump_storage_decrypted(root) -> list[tuple[str, str]]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                if not filecrypt.is_encrypted(fh.read(len(filecrypt.MAGIC))):
                    continue
            with filecrypt.DecryptingReader(open(path, "rb")) as reader:
                found.append((f"{path} (decrypted)", reader.read().decode("latin-1")))
    return found


def _subject_indexes() -> list[str]:
    """The subject's blind indexes: a row still holding one would say they were a customer."""
    values = [
        identity_index("wa_id", WA_ID),
        identity_index("bsuid", BSUID),
        identity_index("phone", WA_ID),
        identity_index("cpf", CPF),
    ]
    words = Customer._meta.get_field("name_bidx").tokens(NAME)
    return [v for v in values if v] + words


def _dump_cache() -> list[tuple[str, str]]:
    client = getattr(cache, "_cache", None)
    if hasattr(cache, "client") and hasattr(cache.client, "get_client"):  # django-redis
        redis = cache.client.get_client()
        return [(key.decode(), str(redis.dump(key) or b"")) for key in redis.scan_iter("*")]
    if isinstance(client, dict):  # locmem
        return [(str(k), str(v)) for k, v in client.items()]
    return []


def _forbidden() -> list[str]:
    return [NAME, "Joaquina", WA_ID, BSUID, CPF, *PHONE_SPELLINGS, *TEXTS, "JOAQUINA-ROUTER"]


def _leaks(dump: list[tuple[str, str]]) -> list[str]:
    return [
        f"{where}: {needle!r}" for where, text in dump for needle in _forbidden() if needle in text
    ]


@pytest.fixture
def storage(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def test_erasure_leaves_nothing_but_the_blocked_service_record(
    client, graph, agent, storage, django_capture_on_commit_callbacks
):
    customer = _build_subject(client, graph, agent, django_capture_on_commit_callbacks)
    messages = Message.objects.filter(conversation__customer=customer)
    assert any(m.text == TEXTS[0] for m in messages)
    assert messages.exclude(media_file="").exists(), "the photo was downloaded"
    decisions = apps.get_model("bot", "BotDecision").objects.filter(conversation__customer=customer)
    assert decisions.exists(), "the bot decided on the customer's messages"
    protocol = customer.conversations.get().protocol

    # The customer asks for their data (an export) and then for erasure, on WhatsApp.
    with django_capture_on_commit_callbacks(execute=True):
        access = dsr_detect_and_open(customer, "Quero meus dados, por favor")
        export = export_create(request=access, actor=None)
    export.refresh_from_db()
    assert export.status == "ready" and export.file
    before = _leaks(_dump_database()) + _leaks(_dump_storage(storage)) + _leaks(_dump_cache())
    assert before, "the test data must be visible before the erasure"
    assert _leaks(_dump_cache()), "the cached copy is visible before the erasure"
    # At rest, nothing personal is readable without the keys: not in any table, not on disk…
    assert _leaks(_dump_raw_database(decrypt=False)) == []
    assert _leaks(_dump_storage(storage)) == []
    # …and everything is there for whoever holds them (the dumps can see what they look for).
    at_rest = _dump_raw_database(decrypt=True) + _dump_storage_decrypted(storage)
    assert {needle for needle in _forbidden() if any(needle in t for _w, t in at_rest)} == set(
        _forbidden()
    )
    assert any(i in t for i in _subject_indexes() for _w, t in _dump_raw_database(decrypt=False))

    erase = dsr_detect_and_open(customer, "Quero apagar meus dados")
    assert erase.kind == DataSubjectRequest.Kind.ERASURE
    with django_capture_on_commit_callbacks(execute=True):
        erasure_start(request=erase, actor=None)

    erase.refresh_from_db()
    assert erase.status == DataSubjectRequest.Status.ANSWERED
    assert erase.erasure_report["deleted"]["conversations.message"] >= 2
    assert "Anatel" in erase.retained_legal_basis
    assert any("Meta" in t for t in erase.third_parties)
    assert any("Google" in t for t in erase.third_parties)

    leaks = _leaks(_dump_database()) + _leaks(_dump_storage(storage)) + _leaks(_dump_cache())
    assert leaks == []
    # Decrypting every token in every table and every stored file finds nothing either, and
    # no blind index still points at the subject.
    assert _leaks(_dump_raw_database(decrypt=True) + _dump_storage_decrypted(storage)) == []
    raw = _dump_raw_database(decrypt=False)
    assert [i for i in _subject_indexes() if any(i in t for _w, t in raw)] == []
    assert not customers_by_identity(phone=WA_ID).exists()

    held = ServiceRecordHold.objects.get(protocol=protocol)
    record_text = " ".join(
        str(getattr(held, f.attname)) for f in ServiceRecordHold._meta.concrete_fields
    )
    assert not any(t in record_text for t in TEXTS)
    assert held.retain_until > held.opened_at.date()
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ANONYMIZED


def test_erasure_is_refused_under_a_legal_hold(customer, dpo):
    LegalHold.objects.create(
        customer=customer, reason="Processo judicial 123", legal_basis="LGPD art. 7º, VI"
    )
    request = dsr_detect_and_open(customer, "excluir meus dados")
    from compliance.services import RequestError

    with pytest.raises(RequestError):
        erasure_start(request=request, actor=dpo)
    request.refresh_from_db()
    assert request.status == DataSubjectRequest.Status.REJECTED
    assert "retenção legal" in request.answer_text
    customer.refresh_from_db()
    assert customer.name == "Ana Souza"
