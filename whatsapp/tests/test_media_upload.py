"""Agents' attachments: uploaded to Meta once, then sent by id (real client, simulator, loopback)."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations import services
from conversations.models import Conversation, Message
from conversations.tests.conftest import login
from conversations.tests.factories import ConversationFactory
from whatsapp import delivery
from whatsapp.tasks.outbound import deliver_outbound_message
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db
PNID = "100000000000001"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.4 segunda via"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def conversation(customer):
    return ConversationFactory(customer=customer)


def attach(conversation, *, kind, mime, name, data, caption=""):
    """An agent's attachment queued in the outbox, as the console stores it (file, no id)."""
    return services.message_record_outbound(
        conversation=conversation,
        sender_kind=Message.SenderKind.AGENT,
        type=kind,
        text=caption,
        media=services.MediaInfo(mime_type=mime, filename=name, size=len(data)),
        media_file=ContentFile(data, name=name),
    )


def test_an_image_is_uploaded_once_then_sent_by_its_id_with_the_caption(graph, conversation):
    message = attach(
        conversation, kind="image", mime="image/png", name="modem.png", data=PNG, caption="Luzes"
    )

    deliver_outbound_message.delay(message.pk)

    (upload,) = graph.uploads()
    assert upload.path == f"/simulator/graph/v25.0/{PNID}/media"
    assert upload.authorization == "Bearer dev-access-token"
    assert upload.body == {
        "messaging_product": "whatsapp",
        "type": "image/png",
        "file": {"name": "modem.png", "size": len(PNG), "mime_type": "image/png"},
    }
    media_id = upload_id(graph)
    assert graph.media[media_id].data == PNG
    (sent,) = graph.sent()
    assert (sent["type"], sent["image"]) == ("image", {"id": media_id, "caption": "Luzes"})
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and message.media_id == media_id


def upload_id(graph) -> str:
    (media_id,) = graph.media.keys()
    return media_id


def test_a_document_is_sent_with_its_filename(graph, conversation):
    message = attach(
        conversation,
        kind="document",
        mime="application/pdf",
        name="fatura-novembro.pdf",
        data=PDF,
        caption="Segunda via",
    )

    deliver_outbound_message.delay(message.pk)

    assert len(graph.uploads()) == 1
    assert graph.sent()[0]["document"] == {
        "id": upload_id(graph),
        "caption": "Segunda via",
        "filename": "fatura-novembro.pdf",
    }


def test_the_upload_leaves_from_the_number_that_sends(graph, settings):
    settings.WHATSAPP_PHONE_NUMBER_IDS = ["100000000000001", "100000000000002"]
    conversation = ConversationFactory(business_number_id="100000000000002")
    message = attach(conversation, kind="image", mime="image/png", name="a.png", data=PNG)

    deliver_outbound_message.delay(message.pk)

    assert graph.uploads()[0].path.endswith("/100000000000002/media")
    assert graph.requests[-1].path.endswith("/100000000000002/messages")


def test_a_retried_delivery_does_not_upload_again(graph, conversation):
    message = attach(conversation, kind="image", mime="image/png", name="a.png", data=PNG)
    graph.push_error(131000)  # the send (not the upload) fails once, transiently

    first = delivery.message_deliver(message_id=message.pk)
    second = delivery.message_deliver(message_id=message.pk)

    assert (first.result, second.result) == ("retry", "sent")
    assert len(graph.uploads()) == 1
    (sent,) = graph.sent()
    assert sent["image"] == {"id": upload_id(graph)}
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and message.media_id == upload_id(graph)


def test_a_transient_upload_error_is_retried(graph, conversation):
    message = attach(conversation, kind="image", mime="image/png", name="a.png", data=PNG)
    graph.push_http(503, endpoint="upload")

    first = delivery.message_deliver(message_id=message.pk)
    second = delivery.message_deliver(message_id=message.pk)

    assert (first.result, second.result) == ("retry", "sent")
    assert len(graph.uploads()) == 1 and len(graph.sent()) == 1


def test_an_upload_meta_refuses_fails_the_message_and_nothing_is_sent(graph, conversation):
    message = attach(conversation, kind="image", mime="image/png", name="a.png", data=PNG)
    graph.push_error(131053, endpoint="upload")

    assert delivery.message_deliver(message_id=message.pk).result == "failed"

    assert graph.sent() == []
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED and message.error_code == 131053


@pytest.mark.parametrize(
    ("kind", "mime", "size", "reason"),
    [
        ("image", "image/png", 5 * 1024 * 1024 + 1, "máximo 5 MB"),
        ("video", "video/mp4", 16 * 1024 * 1024 + 1, "máximo 16 MB"),
        ("sticker", "image/webp", 100 * 1024 + 1, "máximo 100 KB"),  # static
        ("image", "image/gif", 10, "Tipo de arquivo não aceito"),
        ("document", "image/png", 10, "Tipo de arquivo não aceito"),
    ],
)
def test_a_file_outside_metas_limits_fails_with_the_reason_and_nothing_reaches_meta(
    graph, conversation, kind, mime, size, reason
):
    message = attach(conversation, kind=kind, mime=mime, name="arquivo", data=b"\x00" * size)

    deliver_outbound_message.delay(message.pk)

    assert graph.requests == []
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert reason in message.error_title


def test_an_animated_sticker_may_be_up_to_500_kb(graph, conversation):
    animated = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x02" + b"\x00" * (300 * 1024)
    message = attach(conversation, kind="sticker", mime="image/webp", name="s.webp", data=animated)

    deliver_outbound_message.delay(message.pk)

    assert graph.sent()[0]["sticker"] == {"id": upload_id(graph)}


def test_the_simulator_refuses_an_upload_without_the_token_or_the_fields(graph, loopback_url):
    import requests

    url = f"{loopback_url}/simulator/graph/v25.0/{PNID}/media"
    files = {"file": ("a.png", PNG, "image/png")}
    fields = {"messaging_product": "whatsapp", "type": "image/png"}
    no_token = requests.post(url, data=fields, files=files, timeout=5)
    bearer = {"Authorization": "Bearer dev-access-token"}
    no_type = requests.post(
        url, data={"messaging_product": "whatsapp"}, files=files, headers=bearer, timeout=5
    )
    no_file = requests.post(url, data=fields, headers=bearer, timeout=5)

    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == 190
    assert no_type.status_code == 400 and no_file.status_code == 400
    assert graph.media == {}


def test_an_attachment_from_the_console_reaches_the_simulator_as_upload_then_send(
    graph, client, agent, team_support, customer, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(
        customer=customer,
        team=team_support,
        state=Conversation.State.ASSIGNED,
        assigned_agent=agent,
    )
    login(client, agent)
    upload = SimpleUploadedFile("contrato.pdf", PDF, content_type="application/pdf")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/console/c/{conversation.pk}/reply/",
            {"text": "Segue o contrato", "attachment": upload},
            HTTP_X_REQUESTED_WITH="fetch",
        )

    assert response.status_code == 200
    (uploaded,) = graph.uploads()
    assert uploaded.body["file"] == {
        "name": "contrato.pdf",
        "size": len(PDF),
        "mime_type": "application/pdf",
    }
    (sent,) = graph.sent()
    assert sent["document"] == {
        "id": upload_id(graph),
        "caption": "Segue o contrato",
        "filename": "contrato.pdf",
    }
    message = Message.objects.get(pk=response.json()["message"])
    assert message.status == Message.Status.SENT
