"""Customers, messages, notes and files at rest: ciphertext in the database and on disk, found
through keyed blind indexes (never by decrypting rows), identifiers still unique."""

from __future__ import annotations

import importlib

import pytest
from django.core.exceptions import FieldError
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.helpers import login_verified
from compliance.registry import ErasureReport
from conversations import services
from conversations.identity import (
    customer_name_q,
    customers_by_identity,
    identity_index,
)
from conversations.models import Conversation, ConversationNote, Customer, Message
from conversations.privacy import CustomerProvider
from conversations.tests.factories import ConversationFactory, CustomerFactory
from ispsupport import crypto, filecrypt

pytestmark = pytest.mark.django_db

NAME = "Joaquina Vasconcelos Brandão"
WA_ID = "551187651234"  # old format: the canonical phone gains the 9th digit
PHONE = "+5511987651234"
BSUID = "BR.1234567890JOAQUINA"
CPF = "52998224725"
TEXT = "Minha fibra caiu na Rua das Acácias Imaginárias 4321"


def _raw(model, pk: int, *columns: str) -> dict[str, str]:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return dict(zip(columns, cursor.fetchone(), strict=True))


def _joaquina() -> Customer:
    customer = services.customer_resolve(
        wa_id=WA_ID, bsuid=BSUID, parent_bsuid="BR.PARENT9", name=NAME, username="joaquina.b"
    )
    Customer.objects.filter(pk=customer.pk).update(cpf=CPF, metadata={"erp": "Rua Imaginária"})
    customer.refresh_from_db()
    return customer


# --- ciphertext in the columns ------------------------------------------------------------------


def test_every_identity_column_of_a_customer_is_ciphertext():
    customer = _joaquina()
    columns = ("wa_id", "bsuid", "parent_bsuid", "username", "phone_e164", "name", "cpf")
    raw = _raw(Customer, customer.pk, *columns, "metadata")
    assert all(raw[c].startswith(crypto.TOKEN_PREFIX) for c in raw), raw
    everything = " ".join(
        str(v)
        for v in _raw(Customer, customer.pk, *columns, "metadata", "wa_id_bidx", "phone_bidx",
                      "bsuid_bidx", "cpf_bidx", "name_bidx").values()
    )  # fmt: skip
    for plain in (NAME, "Joaquina", "Brand", WA_ID, "987651234", BSUID, "joaquina.b", CPF,
                  "Imaginária", "PARENT9"):  # fmt: skip
        assert plain not in everything
    # Python sees the plaintext.
    fresh = Customer.objects.get(pk=customer.pk)
    assert (fresh.name, fresh.phone_e164, fresh.wa_id, fresh.bsuid, fresh.cpf) == (
        NAME,
        PHONE,
        WA_ID,
        BSUID,
        CPF,
    )
    assert fresh.metadata == {"erp": "Rua Imaginária"}
    assert fresh.masked_cpf == "•••.982.•••-25"


def test_message_text_payload_error_file_name_note_and_resolution_are_ciphertext(agent):
    conversation = ConversationFactory(customer=_joaquina())
    message, _ = services.message_record_inbound(
        conversation=conversation,
        wamid="wamid.AT-REST-1",
        type="location",
        timestamp=timezone.now(),
        text=TEXT,
        media=services.MediaInfo(filename="boleto-joaquina.pdf"),
        payload={"location": {"name": "Casa da Joaquina", "address": "Rua das Acácias 4321"}},
        errors=[{"code": 131051, "title": "Unsupported", "details": "echo: " + TEXT}],
    )
    note = services.note_add(conversation=conversation, author=agent, text="Cliente Joaquina VIP")
    services.conversation_close(
        conversation=conversation, resolution="resolved", note="Joaquina ficou satisfeita"
    )

    raw = _raw(Message, message.pk, "text", "payload", "error_details", "media_filename")
    assert all(v.startswith(crypto.TOKEN_PREFIX) for v in raw.values()), raw
    raw_note = _raw(ConversationNote, note.pk, "text")["text"]
    raw_close = _raw(Conversation, conversation.pk, "resolution_note")["resolution_note"]
    for value in [*raw.values(), raw_note, raw_close]:
        assert value.startswith(crypto.TOKEN_PREFIX)
        assert "Joaquina" not in value and "Acácias" not in value and "4321" not in value
    fresh = Message.objects.get(pk=message.pk)
    assert fresh.text == TEXT and fresh.payload["location"]["name"] == "Casa da Joaquina"
    assert fresh.media_filename == "boleto-joaquina.pdf" and fresh.error_details.endswith("4321")


def test_encrypted_columns_refuse_comparisons_except_with_the_empty_string():
    customer = _joaquina()
    with pytest.raises(FieldError, match="blind-index"):
        list(Customer.objects.filter(name=NAME))
    with pytest.raises(FieldError):
        list(Customer.objects.filter(name__icontains="joaq"))
    # "" is stored as-is, so "has no CPF" remains a query the database can answer.
    assert not Customer.objects.filter(pk=customer.pk, cpf="").exists()
    assert Customer.objects.filter(pk=CustomerFactory().pk, cpf="").exists()


# --- exact look-ups through the blind index ------------------------------------------------------


@pytest.mark.parametrize(
    "spelling", ["5511987651234", "551187651234", "+55 (11) 98765-1234", "11 8765-1234"]
)
def test_phone_lookup_in_any_spelling_compares_only_the_index(spelling):
    customer = _joaquina()
    with CaptureQueriesContext(connection) as queries:
        found = list(customers_by_identity(phone=spelling, national=True))
    assert found == [customer]
    (query,) = queries.captured_queries
    assert "phone_bidx" in query["sql"]
    assert identity_index("phone", PHONE) in query["sql"]
    assert "987651234" not in query["sql"] and "87651234" not in query["sql"]


def test_wa_id_bsuid_and_cpf_lookups_find_the_customer():
    customer = _joaquina()
    CustomerFactory(wa_id="5521999990000", phone_e164="+5521999990000", cpf="11144477735")
    assert list(customers_by_identity(wa_id=WA_ID)) == [customer]
    assert list(customers_by_identity(bsuid=BSUID)) == [customer]
    assert list(customers_by_identity(cpf="529.982.247-25")) == [customer]
    assert list(customers_by_identity(cpf=CPF, phone="11 98765-1234", national=True)) == [customer]
    assert list(customers_by_identity(wa_id=[WA_ID, "5521999990000"])) != []
    assert not customers_by_identity(cpf="52998224726").exists()
    assert not customers_by_identity(cpf="5299").exists()  # not a CPF: matches nothing
    assert not customers_by_identity(phone="not a phone").exists()
    assert not customers_by_identity().exists()  # no criterion is never "everyone"


def test_resolution_finds_the_same_customer_by_bsuid_and_by_either_phone_spelling():
    customer = _joaquina()
    assert services.customer_resolve(wa_id="5511987651234").pk == customer.pk
    assert services.customer_resolve(bsuid=BSUID).pk == customer.pk
    assert Customer.objects.count() == 1


# --- uniqueness and the identity rule -------------------------------------------------------------


@pytest.mark.parametrize(
    "duplicate",
    [
        {"wa_id": "5511987651234x", "phone_e164": PHONE},
        {"wa_id": WA_ID},
        {"bsuid": BSUID},
    ],
)
def test_identifiers_stay_unique_through_their_indexes(duplicate):
    _joaquina()
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(**duplicate)


def test_a_customer_without_any_identity_is_refused():
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(name="Sem identificação")


# --- the indexes follow every write --------------------------------------------------------------


def test_indexes_follow_save_update_bulk_update_and_erasure():
    customer = CustomerFactory(wa_id="5521988887777", phone_e164="+5521988887777", name="Ana")

    customer.cpf = CPF
    customer.save(update_fields=["cpf"])
    assert list(customers_by_identity(cpf=CPF)) == [customer]

    Customer.objects.filter(pk=customer.pk).update(phone_e164="+5531977776666")
    assert list(customers_by_identity(phone="31977776666", national=True)) == [customer]
    assert not customers_by_identity(phone="21988887777", national=True).exists()

    customer.refresh_from_db()
    customer.name = "Ana Clara Siqueira"
    Customer.objects.bulk_update([customer], ["name"])
    assert list(Customer.objects.filter(customer_name_q("siqueira"))) == [customer]

    CustomerProvider().erase(customer, ErasureReport())
    raw = _raw(Customer, customer.pk, "wa_id_bidx", "phone_bidx", "cpf_bidx", "name_bidx")
    assert raw == {"wa_id_bidx": None, "phone_bidx": None, "cpf_bidx": None, "name_bidx": ""}
    assert not customers_by_identity(cpf=CPF).exists()


def test_name_search_is_by_whole_words_ignoring_accents_case_and_order():
    customer = _joaquina()
    maria = CustomerFactory(name="Maria Brandão")
    for term in ("joaquina", "Brandão Joaquina", "vasconcelos  JOAQUINA"):
        assert list(Customer.objects.filter(customer_name_q(term))) == [customer], term
    assert set(Customer.objects.filter(customer_name_q("BRANDAO"))) == {customer, maria}
    assert not Customer.objects.filter(customer_name_q("Joaq")).exists()  # no fragments
    assert customer_name_q("  -- ") is None


# --- the console, the API and the admin -----------------------------------------------------------


@pytest.fixture
def searchable(team_support):
    customer = _joaquina()
    target = ConversationFactory(customer=customer, team=team_support)
    ConversationFactory(team=team_support, customer=CustomerFactory(name="Outra Pessoa"))
    return target


@pytest.mark.parametrize(
    "term",
    ["joaquina", "BRANDÃO", "Brandao Joaquina", "+55 11 98765-1234", "1187651234", CPF,
     "529.982.247-25", "protocol"],
)  # fmt: skip
def test_console_search_by_name_word_phone_cpf_or_protocol(console_client, agent, searchable, term):
    term = searchable.protocol if term == "protocol" else term
    html = console_client(agent).get("/console/", {"s": term}).content.decode()
    assert f'id="row-{searchable.pk}"' in html
    assert "Outra Pessoa" not in html


@pytest.mark.parametrize("term", ["Joaq", "98765", "Outra Joaquina Silva"])
def test_console_search_does_not_match_fragments_or_missing_words(
    console_client, agent, searchable, term
):
    html = console_client(agent).get("/console/", {"s": term}).content.decode()
    assert f'id="row-{searchable.pk}"' not in html


@pytest.mark.parametrize("term", ["brandão", "11987651234", "529.982.247-25", WA_ID])
def test_admin_customer_search_uses_the_indexes(client, admin_member, term):
    customer = _joaquina()
    CustomerFactory(name="Outra Pessoa")
    login_verified(client, admin_member)
    response = client.get("/admin/conversations/customer/", {"q": term})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [customer]


def test_admin_conversation_search_by_customer_phone(client, admin_member, searchable):
    login_verified(client, admin_member)
    response = client.get("/admin/conversations/conversation/", {"q": "(11) 98765-1234"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [searchable]


# --- files ----------------------------------------------------------------------------------------


def test_an_agents_attachment_is_encrypted_on_disk_and_read_back(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    conversation = ConversationFactory(last_customer_message_at=timezone.now())
    secret = b"%PDF-1.4 contrato da Joaquina, CPF 529.982.247-25"
    message = services.message_record_outbound(
        conversation=conversation,
        sender_kind=Message.SenderKind.AGENT,
        type=Message.Type.DOCUMENT,
        media=services.MediaInfo(mime_type="application/pdf", filename="contrato.pdf"),
        media_file=ContentFile(secret, name="contrato.pdf"),
    )
    on_disk = (tmp_path / message.media_file.name).read_bytes()
    assert on_disk.startswith(filecrypt.MAGIC) and b"Joaquina" not in on_disk
    message.refresh_from_db()
    assert message.media_file.size == len(secret)
    with message.media_file.open("rb") as handle:
        assert handle.read() == secret
    with message.media_file.open("rb") as handle:  # reopening goes through the storage again
        handle.seek(9)
        assert handle.read(9) == b"contrato "


# --- the data migration ---------------------------------------------------------------------------


def _state_before_data_step(app_label: str, migration_name: str):
    """The migration state its RunPython sees: previous migrations and this one's schema steps
    (the personal fields still plain text, the index columns present)."""
    module = importlib.import_module(f"{app_label}.migrations.{migration_name}")
    loader = MigrationLoader(connection)
    parent = module.Migration.dependencies[0]
    state = loader.project_state(parent)
    for operation in module.Migration.operations:
        if operation.__class__.__name__ == "RunPython":
            break
        operation.state_forwards(app_label, state)
    return module, state.apps


def test_the_migration_encrypts_existing_rows_and_fills_the_indexes():
    customer = _joaquina()
    conversation = ConversationFactory(customer=customer)
    message, _ = services.message_record_inbound(
        conversation=conversation,
        wamid="wamid.LEGACY",
        type="text",
        timestamp=timezone.now(),
        text=TEXT,
        payload={"text": {"body": TEXT}},
    )
    with connection.cursor() as cursor:  # rows as they were before this release
        cursor.execute(
            f"UPDATE {Customer._meta.db_table} SET wa_id = %s, phone_e164 = %s, name = %s, "  # noqa: S608
            "cpf = %s, bsuid = %s, metadata = %s, wa_id_bidx = NULL, phone_bidx = NULL, "
            "bsuid_bidx = NULL, cpf_bidx = NULL, name_bidx = '' WHERE id = %s",
            [WA_ID, PHONE, NAME, CPF, BSUID, '{"erp": "x"}', customer.pk],
        )
        cursor.execute(
            f"UPDATE {Message._meta.db_table} SET text = %s, payload = %s WHERE id = %s",  # noqa: S608
            [TEXT, '{"text": {"body": "legacy"}}', message.pk],
        )
    assert not customers_by_identity(phone=PHONE).exists()

    migration, historical = _state_before_data_step("conversations", "0005_encrypt_personal_data")
    migration.encrypt_rows(historical, None)
    once = _raw(Customer, customer.pk, "name", "wa_id_bidx")
    migration.encrypt_rows(historical, None)  # idempotent: nothing changes the second time
    assert _raw(Customer, customer.pk, "name", "wa_id_bidx") == once

    raw = _raw(Customer, customer.pk, "wa_id", "phone_e164", "name", "cpf", "bsuid", "metadata")
    assert all(v.startswith(crypto.TOKEN_PREFIX) for v in raw.values())
    assert list(customers_by_identity(phone="11 8765-1234", national=True)) == [customer]
    assert list(customers_by_identity(wa_id=WA_ID, bsuid=BSUID, cpf=CPF)) == [customer]
    assert list(Customer.objects.filter(customer_name_q("brandao"))) == [customer]
    fresh = Customer.objects.get(pk=customer.pk)
    assert (fresh.name, fresh.metadata) == (NAME, {"erp": "x"})
    raw_message = _raw(Message, message.pk, "text", "payload")
    assert all(v.startswith(crypto.TOKEN_PREFIX) for v in raw_message.values())
    assert Message.objects.get(pk=message.pk).payload == {"text": {"body": "legacy"}}

    migration.decrypt_rows(historical, None)  # backwards: plaintext again
    assert _raw(Customer, customer.pk, "name")["name"] == NAME
    assert _raw(Message, message.pk, "text")["text"] == TEXT


def test_the_migration_renames_customers_in_existing_change_log_entries():
    from auditlog.models import LogEntry
    from django.apps import apps as global_apps

    customer = _joaquina()
    entries = LogEntry.objects.get_for_object(customer)
    entries.update(object_repr=NAME)  # as entries written before this release read
    migration = importlib.import_module("conversations.migrations.0005_encrypt_personal_data")

    migration.name_customers_by_id_in_change_logs(global_apps, None)

    assert {e.object_repr for e in entries} == {f"cliente #{customer.pk}"}
