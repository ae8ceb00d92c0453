"""Behaviour of ``whatsapp.parsing`` against the shared corpus of real-shaped Meta payloads.

Plain pytest: no Django, no database. The corpus lives in ``shared/whatsapp-payloads`` beside the
repository (or wherever ``WHATSAPP_CORPUS_DIR`` points).
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whatsapp.parsing import (
    KINDS,
    ApiError,
    Change,
    Contact,
    Envelope,
    InboundMessage,
    MediaRef,
    PayloadError,
    StatusUpdate,
    parse_envelope,
)


def corpus_dir() -> Path:
    """``$WHATSAPP_CORPUS_DIR`` if set, else ``<repo>/../shared/whatsapp-payloads``."""
    configured = os.environ.get("WHATSAPP_CORPUS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared" / "whatsapp-payloads"


CORPUS = corpus_dir()
CORPUS_FILES = sorted(CORPUS.rglob("*.json")) if CORPUS.is_dir() else []
# Upstream bug kept on purpose: a stray "{" after the object.
INVALID_JSON = {"bindambc/webhooks/textMessageStatusRead.json"}
# Corpus envelopes that legitimately degrade something, with the reasons they must report.
EXPECTED_SKIPS = {
    "pywa/split/message__interactive_message_with_err.json": (
        "entry[0].changes[0].messages[0]: interactive object is missing; stored as unsupported",
    ),
}


def rel(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


@cache
def load_json(name: str) -> Any:
    return json.loads((CORPUS / name).read_bytes())


def parse(name: str) -> Envelope:
    return parse_envelope((CORPUS / name).read_bytes())


def only_message(name: str) -> InboundMessage:
    envelope = parse(name)
    assert envelope.skipped == ()
    (message,) = envelope.messages
    return message


def only_status(name: str) -> StatusUpdate:
    envelope = parse(name)
    assert envelope.skipped == ()
    (status,) = envelope.statuses
    return status


def unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def envelope_files() -> list[str]:
    names = []
    for path in CORPUS_FILES:
        try:
            data = json.loads(path.read_bytes())
        except ValueError:
            continue
        if isinstance(data, dict) and "object" in data:
            names.append(rel(path))
    return names


ENVELOPE_FILES = envelope_files()
# Fuzzing spends its examples where the parser does real work.
MESSAGE_FILES = [
    name
    for name in ENVELOPE_FILES
    if any(c.get("field") == "messages" for e in load_json(name)["entry"] for c in e["changes"])
]


# --- the corpus as a whole -------------------------------------------------------------------


def test_corpus_is_present() -> None:
    # Without this, a missing corpus would turn the parametrized test into a silent skip.
    assert len(CORPUS_FILES) >= 200, f"WhatsApp payload corpus not found at {CORPUS}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[rel(p) for p in CORPUS_FILES])
def test_every_corpus_file_parses(path: Path) -> None:
    body = path.read_bytes()
    try:
        data = json.loads(body)
    except ValueError:
        assert rel(path) in INVALID_JSON
        with pytest.raises(PayloadError) as raised:
            parse_envelope(body)
        assert raised.value.reason == "body is not valid JSON"
        return

    if not isinstance(data, dict) or "object" not in data:
        # Send-API bodies and responses, error objects, pywa's dicts of named examples.
        with pytest.raises(PayloadError) as raised:
            parse_envelope(body)
        assert raised.value.reason == "object is missing: not a webhook envelope"
        return

    envelope = parse_envelope(body)
    assert envelope.skipped == EXPECTED_SKIPS.get(rel(path), ())
    raw_changes = [change for entry in data["entry"] for change in entry["changes"]]
    assert [change.field for change in envelope.changes] == [c["field"] for c in raw_changes]
    for change, raw in zip(envelope.changes, raw_changes, strict=True):
        assert change.raw_value == raw["value"]
        if change.field != "messages":
            assert change.messages == change.statuses == change.contacts == ()
            continue
        # Nothing is dropped: every corpus message and status comes out, in order.
        assert [m.wamid for m in change.messages] == [
            m["id"] for m in raw["value"].get("messages", [])
        ]
        assert [s.wamid for s in change.statuses] == [
            s["id"] for s in raw["value"].get("statuses", [])
        ]
        for message in change.messages:
            assert message.kind in KINDS
            assert message.timestamp.tzinfo is UTC
            if rel(path) not in EXPECTED_SKIPS:
                expected_kind = message.raw_type if message.raw_type in KINDS else "unsupported"
                assert message.kind == expected_kind


def test_send_api_response_is_not_an_envelope() -> None:
    with pytest.raises(PayloadError, match="not a webhook envelope"):
        parse("bindambc/send-api/responses/message.json")


def test_pywa_original_named_examples_are_not_envelopes() -> None:
    with pytest.raises(PayloadError, match="not a webhook envelope"):
        parse("pywa/original/message.json")


# --- concrete content ------------------------------------------------------------------------


def test_text_message() -> None:
    envelope = parse("bindambc/webhooks/textMessage.json")
    (change,) = envelope.changes
    assert change.waba_id == "880480571844883"
    assert change.phone_number_id == "409552778964973"
    assert change.display_phone_number == "43330585569"
    (message,) = change.messages
    assert message.kind == "text"
    assert message.text == "hi everyone!"
    assert message.from_wa_id == "1111111111111"
    assert message.timestamp == unix(1672947578)
    assert message.contact == Contact(
        wa_id="1111111111111",
        user_id=None,
        parent_user_id=None,
        name="Mauricio Binda",
        username=None,
    )
    assert message.media is None and message.context_id is None and not message.forwarded


def test_image_carries_media_ref_with_sha256() -> None:
    message = only_message("bindambc/webhooks/imageMessage.json")
    assert message.kind == "image"
    assert message.media == MediaRef(
        media_id="8472976218001204",
        mime_type="image/jpeg",
        sha256="ciJuSxU7RLnnFz3cNcasdL7UQKt9e1yj/3u+Rhsabv0=",
        url=None,
        filename=None,
        caption=None,
        voice=False,
        animated=False,
    )


def test_media_url_is_kept_when_meta_sends_it() -> None:
    message = only_message("pywa/split/message__media_with_url.json")
    assert message.media is not None
    assert message.media.url is not None
    assert message.media.url.startswith("https://lookaside.fbsbx.com/")


def test_caption_becomes_text_and_document_keeps_filename() -> None:
    message = only_message(
        "netflie/NotificationFactoryTest__can_build_an_document_notification.json"
    )
    assert message.kind == "document"
    assert message.text == "CAPTION_TEXT"
    assert message.media is not None
    assert (message.media.filename, message.media.caption) == ("FILENAME", "CAPTION_TEXT")


def test_voice_note_is_audio_with_voice_flag() -> None:
    message = only_message("pywa/split/message__voice.json")
    assert message.kind == "audio"
    assert message.media is not None
    assert message.media.voice is True
    assert message.media.mime_type == "audio/ogg; codecs=opus"


def test_animated_sticker() -> None:
    message = only_message("pywa/split/message__animated_sticker.json")
    assert message.kind == "sticker"
    assert message.media is not None and message.media.animated is True


def test_reaction() -> None:
    message = only_message("bindambc/webhooks/reactMessage.json")
    assert message.kind == "reaction"
    assert message.reaction_emoji == "\N{THUMBS UP SIGN}"
    assert (
        message.reaction_to == "wamid.nBgN6TUyN2k5NzAzM5kzNhUCABI8FDNFQjAxQkE5REI4NEUzQ5Y5QTNgAA=="
    )


@pytest.mark.parametrize(
    "name",
    [
        "pywa/split/message__unreaction_empty.json",
        "pywa/split/message__unreaction_no_emoji.json",
        "netflie/NotificationFactoryTest__can_build_a_removed_reaction_notification.json",
    ],
)
def test_removed_reaction_has_empty_emoji(name: str) -> None:
    message = only_message(name)
    assert message.kind == "reaction"
    assert message.reaction_emoji == ""
    assert message.reaction_to is not None


def test_interactive_button_reply() -> None:
    message = only_message("pywa/split/callback_button__button.json")
    assert message.kind == "interactive"
    assert (message.reply_id, message.reply_title, message.text) == (
        "callback_data",
        "title",
        "title",
    )
    assert message.context_id == "wamid.xyzxyz"


def test_interactive_list_reply() -> None:
    message = only_message("netflie/NotificationFactoryTest__can_build_a_list_notification.json")
    assert message.kind == "interactive"
    assert message.reply_id == "list_reply_id"
    assert message.text == "list_reply_title"


def test_flow_reply_uses_nfm_body() -> None:
    message = only_message("pywa/split/flow_completion__completion.json")
    assert message.kind == "interactive"
    assert message.text == "Sent"


def test_template_quick_reply_button_uses_payload_as_reply_id() -> None:
    message = only_message("bindambc/webhooks/buttonMessage.json")
    assert message.kind == "button"
    assert (message.reply_id, message.text) == ("SIM", "SIM")


def test_location() -> None:
    message = only_message("pywa/split/message__chosen_location.json")
    assert message.kind == "location"
    assert message.location == {
        "latitude": 37.4611978,
        "longitude": -122.2164385,
        "name": "Facebook HQ",
        "address": "1 Hacker Way, Menlo Park, CA 94025",
        "url": "https://maps.google.com/?cid=2000000000000000000",
    }
    assert message.forwarded is True


def test_location_placeholders_become_none() -> None:
    message = only_message(
        "netflie/NotificationFactoryTest__can_build_a_location_notification.json"
    )
    assert message.location is not None
    assert (message.location["latitude"], message.location["longitude"]) == (None, None)
    assert message.location["name"] == "LOCATION_NAME"


def test_shared_contacts() -> None:
    message = only_message("pywa/split/message__contacts.json")
    assert message.kind == "contacts"
    assert [c["name"]["formatted_name"] for c in message.shared_contacts] == [
        "Chandler Bing",
        "Monica",
        "Rachel Green",
    ]


def test_reply_context_id() -> None:
    message = only_message("pywa/split/message__reply.json")
    assert message.context_id == "wamid.xyzxyz=="
    assert message.text == "replied text"
    assert message.forwarded is False


def test_frequently_forwarded_counts_as_forwarded() -> None:
    assert only_message("pywa/split/message__forwarded_many_times.json").forwarded is True


def test_referral_from_click_to_whatsapp_ad() -> None:
    message = only_message("pywa/split/message__referral.json")
    assert message.referral is not None
    assert message.referral["source_id"] == "ADID"
    assert message.referral["ctwa_clid"] == "CTWA_CLID"


def test_revoke_targets_original_message() -> None:
    message = only_message("pywa/split/deleted_message__revoke.json")
    assert message.kind == "revoke"
    assert message.target_id == "<ORIGINAL_WHATSAPP_MESSAGE_ID>"


def test_edit_targets_original_and_carries_new_content() -> None:
    message = only_message("pywa/split/edited_message__image.json")
    assert message.kind == "edit"
    assert message.raw_type == "edit"
    assert message.target_id == "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    assert message.text == "Updated image caption"
    assert message.media is not None and message.media.media_id == "1234567890"


def test_system_user_changed_number() -> None:
    envelope = parse("pywa/split/system__phone_number_change.json")
    (message,) = envelope.messages
    assert message.kind == "system"
    assert message.system_type == "user_changed_number"
    assert message.new_wa_id == "972912345678"
    assert message.from_wa_id == "972987654321"
    assert message.contact is None  # system messages may come with no contacts[]
    assert message.text is not None and message.text.startswith("User A changed")


def test_system_identity_changed() -> None:
    message = only_message("pywa/split/system__identity_change.json")
    assert message.system_type == "customer_identity_changed"
    assert message.new_wa_id is None


def test_unsupported_message_keeps_error_131051() -> None:
    message = only_message("pywa/split/message__unsupported_with_type.json")
    assert (message.kind, message.raw_type) == ("unsupported", "unsupported")
    assert message.errors == (
        ApiError(
            code=131051,
            title="Message type unknown",
            message="Message type unknown",
            details="Message type is currently not supported.",
        ),
    )


def test_legacy_unknown_type_is_unsupported_and_reads_top_level_details() -> None:
    message = only_message(
        "netflie/NotificationFactoryTest__can_build_an_unknown_notification.json"
    )
    assert (message.kind, message.raw_type) == ("unsupported", "unknown")
    (error,) = message.errors
    assert error.code == 131051
    assert error.details == "Message type is not currently supported"


def test_bsuid_only_sender_without_from() -> None:
    name = "whatsapp-api-js/v25-payload-tests/incoming_message_with_username_has_parent_bsuid.json"
    message = only_message(name)
    assert message.from_wa_id is None
    assert message.from_user_id == "US.13491208655302741918"
    assert message.contact == Contact(
        wa_id=None,
        user_id="US.13491208655302741918",
        parent_user_id="US.ENT.506847293015824",
        name="test user name",
        username="@testusername",
    )


def test_sender_with_neither_from_nor_from_user_id_gets_the_single_contact() -> None:
    name = (
        "netflie/NotificationFactoryTest__can_build_a_notification_with_bsuid_only_and_no_from.json"
    )
    message = only_message(name)
    assert (message.from_wa_id, message.from_user_id) == (None, None)
    assert message.contact is not None and message.contact.user_id == "BSUID_123"


def test_integer_timestamps_are_accepted() -> None:
    message = only_message("netflie/NotificationFactoryTest__can_build_a_button_notification.json")
    assert message.timestamp == unix(1669233778)


def test_failed_status_with_re_engagement_error() -> None:
    status = only_status("bindambc/webhooks/reEngagementMessageError.json")
    assert status.status == "failed"
    assert status.recipient_id == "5511111111111"
    assert status.timestamp == unix(1682651887)
    (error,) = status.errors
    assert error.code == 131047
    assert error.title == "Re-engagement message"
    assert error.details.startswith("Message failed to send because more than 24 hours")
    assert (
        error.href == "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
    )


def test_status_pricing_category_and_bsuid_recipient() -> None:
    status = only_status("whatsapp-api-js/v25-files/sent.json")
    assert status.status == "sent"
    assert status.pricing_category == "marketing"
    assert status.recipient_user_id == "US.13491208655302741918"


def test_status_without_recipient_id() -> None:
    name = (
        "whatsapp-api-js/v25-payload-tests/"
        "read_status_with_username_has_parent_bsuid_was_sent_to_bsuid.json"
    )
    status = only_status(name)
    assert (status.status, status.recipient_id) == ("read", None)
    assert status.recipient_user_id == "US.13491208655302741918"


def test_played_status() -> None:
    assert only_status("pywa/split/message_status__played.json").status == "played"


def test_two_changes_in_one_entry_yield_both_messages() -> None:
    envelope = parse("netflie/NotificationFactoryTest__can_build_multiple_text_notification.json")
    assert len(envelope.changes) == 2
    assert [m.text for m in envelope.messages] == ["MESSAGE_BODY", "MESSAGE_BODY2"]
    assert [m.timestamp for m in envelope.messages] == [unix(1669233778), unix(1669233779)]


def test_value_level_errors_and_degraded_message() -> None:
    envelope = parse("pywa/split/message__interactive_message_with_err.json")
    (change,) = envelope.changes
    assert [e.code for e in change.errors] == [131000]
    assert change.errors[0].details == "Unsupported webhook payload"
    (message,) = change.messages
    assert (message.kind, message.raw_type) == ("unsupported", "interactive")
    assert message.context_id == "wamid.gvwegfretge=="


def test_other_fields_are_kept_raw_and_empty() -> None:
    envelope = parse("pywa/split/outgoing_message__text.json")
    (change,) = envelope.changes
    assert change.field == "smb_message_echoes"
    assert change.messages == change.statuses == change.contacts == change.errors == ()
    assert change.raw_value["message_echoes"][0]["type"] == "text"
    assert change.phone_number_id == "1122334455667"


# --- envelope-level rejection and tolerated damage -------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "body is not valid JSON"),
        (b"\xff\xfe\x00garbage", "body is not valid JSON"),
        ("[" * 100_000, "body is not valid JSON"),
        (b"[1, 2]", "top-level JSON value is not an object"),
        ("null", "top-level JSON value is not an object"),
        ({"entry": []}, "object is missing: not a webhook envelope"),
        ({"object": "page", "entry": []}, "object is not whatsapp_business_account"),
        ({"object": "whatsapp_business_account"}, "entry is missing"),
        ({"object": "whatsapp_business_account", "entry": {}}, "entry is not a list"),
    ],
)
def test_envelope_level_problems_raise_payload_error(body: Any, reason: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_envelope(body)
    assert raised.value.reason == reason
    assert isinstance(raised.value, ValueError)


def test_accepts_str_bytes_and_dict_alike() -> None:
    raw = (CORPUS / "bindambc/webhooks/textMessage.json").read_bytes()
    from_bytes = parse_envelope(raw)
    assert parse_envelope(raw.decode()) == from_bytes
    assert parse_envelope(json.loads(raw)) == from_bytes


def message_envelope(*messages: Any, statuses: Any = None) -> dict[str, Any]:
    value: dict[str, Any] = {"messaging_product": "whatsapp", "messages": list(messages)}
    if statuses is not None:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


def text(wamid: Any, timestamp: Any = "1700000000", body: str = "oi") -> dict[str, Any]:
    return {"id": wamid, "timestamp": timestamp, "type": "text", "text": {"body": body}}


def test_bad_messages_are_skipped_with_reasons_and_the_rest_kept() -> None:
    envelope = parse_envelope(
        message_envelope(
            text("wamid.ok1"),
            "not an object",
            text(None),
            text("wamid.bad-ts", timestamp="yesterday"),
            text("wamid.ok2", timestamp=1700000001),
        )
    )
    assert [m.wamid for m in envelope.messages] == ["wamid.ok1", "wamid.ok2"]
    assert envelope.skipped == (
        "entry[0].changes[0].messages[1]: not an object",
        "entry[0].changes[0].messages[2]: no usable id",
        "entry[0].changes[0].messages[3]: timestamp is missing or not Unix seconds",
    )


def test_skip_reasons_never_quote_message_content() -> None:
    secret = "meu CPF é 123.456.789-00"
    envelope = parse_envelope(
        message_envelope(
            {"id": "wamid.x", "timestamp": secret, "from": secret, "type": "text"},
            {"id": "wamid.y", "timestamp": "1", "from": secret, "type": "image", "text": secret},
        )
    )
    assert len(envelope.skipped) == 2
    assert not any(secret in reason or "123" in reason for reason in envelope.skipped)


def test_message_without_type_is_unsupported_with_reason() -> None:
    envelope = parse_envelope(message_envelope({"id": "wamid.x", "timestamp": "1700000000"}))
    (message,) = envelope.messages
    assert (message.kind, message.raw_type) == ("unsupported", "")
    assert envelope.skipped == (
        "entry[0].changes[0].messages[0]: type is missing; stored as unsupported",
    )


def test_unknown_status_strings_are_kept_lower_cased() -> None:
    statuses = [
        {"id": "wamid.a", "status": "DELIVERED", "timestamp": "1700000000"},
        {"id": "wamid.b", "status": "deleted", "timestamp": "1700000000"},
        {"id": "wamid.c", "timestamp": "1700000000"},
    ]
    envelope = parse_envelope(message_envelope(statuses=statuses))
    assert [(s.wamid, s.status) for s in envelope.statuses] == [
        ("wamid.a", "delivered"),
        ("wamid.b", "deleted"),
    ]
    assert envelope.skipped == ("entry[0].changes[0].statuses[2]: status is missing",)


def test_malformed_entries_and_changes_are_skipped_not_fatal() -> None:
    good = message_envelope(text("wamid.ok"))["entry"][0]
    envelope = parse_envelope(
        {
            "object": "whatsapp_business_account",
            "entry": [7, {"id": "2"}, {"id": "3", "changes": ["x", {"value": {}}]}, good],
        }
    )
    assert [m.wamid for m in envelope.messages] == ["wamid.ok"]
    assert [c.field for c in envelope.changes] == ["", "messages"]
    assert envelope.skipped == (
        "entry[0]: not an object",
        "entry[1]: changes is missing or not a list",
        "entry[2].changes[0]: not an object",
        "entry[2].changes[1]: field is missing or not a string",
    )


def test_timestamps_outside_datetime_range_are_skipped() -> None:
    envelope = parse_envelope(
        message_envelope(
            text("a", 10**30), text("b", -5), text("c", True), text("d", "1e9"), text("e", 1.5e9)
        )
    )
    assert [m.wamid for m in envelope.messages] == ["e"]
    assert len(envelope.skipped) == 4


# --- batching --------------------------------------------------------------------------------


def test_large_batch_yields_everything_in_order() -> None:
    entries = []
    for e in range(3):
        changes = []
        for c in range(2):
            prefix = f"wamid.{e}.{c}"
            value = {
                "metadata": {"phone_number_id": f"pn{c}"},
                "contacts": [
                    {"wa_id": f"55{e}{c}{n:04}", "profile": {"name": f"n{n}"}} for n in range(200)
                ],
                "messages": [
                    {**text(f"{prefix}.m{n}", str(1_700_000_000 + n)), "from": f"55{e}{c}{n:04}"}
                    for n in range(200)
                ],
                "statuses": [
                    {"id": f"{prefix}.s{n}", "status": "read", "timestamp": "1700000000"}
                    for n in range(200)
                ],
            }
            changes.append({"field": "messages", "value": value})
        entries.append({"id": f"waba{e}", "changes": changes})
    body = json.dumps({"object": "whatsapp_business_account", "entry": entries})

    envelope = parse_envelope(body)

    assert envelope.skipped == ()
    assert len(envelope.changes) == 6
    expected_messages = [
        f"wamid.{e}.{c}.m{n}" for e in range(3) for c in range(2) for n in range(200)
    ]
    expected_statuses = [
        f"wamid.{e}.{c}.s{n}" for e in range(3) for c in range(2) for n in range(200)
    ]
    assert [m.wamid for m in envelope.messages] == expected_messages
    assert [s.wamid for s in envelope.statuses] == expected_statuses
    # Each message is matched to its own sender among the 200 contacts of its change.
    assert all(m.contact is not None and m.contact.wa_id == m.from_wa_id for m in envelope.messages)
    assert [c.waba_id for c in envelope.changes] == [
        "waba0",
        "waba0",
        "waba1",
        "waba1",
        "waba2",
        "waba2",
    ]


# --- property tests --------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "1700000000", "wamid.x", "text", "messages", "failed", "image", "edit"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)
# Keys the parser looks at, so that added keys often land where they matter.
PARSER_KEYS = sorted(
    {"object", "entry", "id", "changes", "field", "value", "metadata", "contacts", "messages"}
    | {"statuses", "errors", "from", "from_user_id", "timestamp", "type", "text", "body"}
    | {"context", "referral", "reaction", "emoji", "message_id", "edit", "message", "revoke"}
    | {"original_message_id", "interactive", "button_reply", "list_reply", "system", "wa_id"}
    | {"profile", "user_id", "status", "pricing", "category", "code", "error_data", "location"}
    | {"image", "audio", "voice", "latitude", "nfm_reply", "button", "payload", "order"}
)

KeyPath = tuple[str | int, ...]


def container_paths(node: Any, path: KeyPath = ()) -> list[KeyPath]:
    """Paths of every dict and list inside ``node`` (including the root)."""
    paths = [path]
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        if isinstance(child, (dict, list)):
            paths.extend(container_paths(child, (*path, key)))
    return paths


def at(node: Any, path: KeyPath) -> Any:
    for key in path:
        node = node[key]
    return node


def assert_well_formed(result: Envelope) -> None:
    """What callers rely on, whatever the input was."""
    assert isinstance(result, Envelope)
    for change in result.changes:
        assert isinstance(change, Change) and isinstance(change.field, str)
        assert isinstance(change.raw_value, dict)
        for message in change.messages:
            assert isinstance(message.wamid, str) and message.wamid
            assert message.kind in KINDS
            assert message.timestamp.tzinfo is UTC
            assert message.text is None or isinstance(message.text, str)
            assert all(isinstance(e.code, int | None) for e in message.errors)
        for status in change.statuses:
            assert isinstance(status.wamid, str) and status.status == status.status.lower()
    assert all(isinstance(reason, str) for reason in result.skipped)


def parse_or_reject(body: Any) -> None:
    try:
        result = parse_envelope(body)
    except PayloadError as error:
        assert error.reason
        return
    assert_well_formed(result)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), value=JSON_VALUES)
def test_property_arbitrary_values_under_real_keys(data: st.DataObject, value: Any) -> None:
    envelope = copy.deepcopy(load_json(data.draw(st.sampled_from(MESSAGE_FILES), label="file")))
    target = at(envelope, data.draw(st.sampled_from(container_paths(envelope)), label="path"))
    if isinstance(target, dict):
        # Mostly a key already there (its real value is replaced), sometimes one the parser reads.
        keys = st.sampled_from(PARSER_KEYS)
        if target:
            keys = st.sampled_from(sorted(target)) | st.sampled_from(sorted(target)) | keys
        target[data.draw(keys, label="key")] = value
    elif target:
        target[data.draw(st.integers(0, len(target) - 1), label="index")] = value
    else:
        target.append(value)
    parse_or_reject(envelope)


# Wrong-typed stand-ins for any field: each is the wrong type for almost every key.
JUNK: tuple[Any, ...] = (None, True, 0, -1, 1.5, "", "x", [], {}, [None], {"": None})
DELETE = object()


def test_any_single_field_replaced_or_removed_is_tolerated() -> None:
    """Deterministic sweep: every key of every container of every messages-field corpus file,
    replaced by each junk value and then removed. The property tests below sample combinations;
    this one guarantees the single-fault cases."""
    for name in MESSAGE_FILES:
        envelope = copy.deepcopy(load_json(name))
        for path in container_paths(envelope):
            target = at(envelope, path)
            for key in list(target) if isinstance(target, dict) else range(len(target)):
                original = target[key]
                faults = [*JUNK, DELETE] if isinstance(target, dict) else JUNK
                for fault in faults:
                    if fault is DELETE:
                        del target[key]
                    else:
                        target[key] = fault
                    try:
                        parse_or_reject(envelope)
                    except Exception as error:  # name the fault, then fail
                        pytest.fail(f"{name} at {[*path, key]} = {fault!r}: {error!r}")
                target[key] = original


@cache
def corpus_batch() -> tuple[bytes, list[KeyPath]]:
    """Every messages-field corpus entry in one envelope (serialised, so each example can decode
    a fresh copy cheaply) and the paths of its containers. Mutations then land mostly inside
    messages and statuses, where the parsing is, rather than in the envelope scaffolding."""
    entries = [entry for name in MESSAGE_FILES for entry in load_json(name)["entry"]]
    envelope = {"object": "whatsapp_business_account", "entry": entries}
    return json.dumps(envelope).encode(), container_paths(envelope)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_mutated_corpus_files(data: st.DataObject) -> None:
    body, paths = corpus_batch()
    envelope = json.loads(body)
    for _ in range(data.draw(st.integers(1, 12), label="mutations")):
        try:  # an earlier mutation may have removed or replaced this container
            target = at(envelope, data.draw(st.sampled_from(paths), label="path"))
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(target, (dict, list)) or not target:
            continue
        keys = sorted(target) if isinstance(target, dict) else range(len(target))
        key = data.draw(st.sampled_from(keys), label="key")
        if data.draw(st.booleans(), label="delete"):
            del target[key]
        else:
            target[key] = data.draw(JSON_VALUES, label="value")
    parse_or_reject(envelope)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200) | st.text(max_size=200))
def test_property_arbitrary_bytes_and_text(body: bytes | str) -> None:
    parse_or_reject(body)
