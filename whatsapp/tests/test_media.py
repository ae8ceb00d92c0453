"""Customers' media: two-step download from the simulator, verification, the staff-only view."""

from __future__ import annotations

import base64
import hashlib

import pytest
from django.core.files.storage import default_storage

from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory, MessageFactory
from ispsupport import filecrypt
from whatsapp import media
from whatsapp.tasks.media import download_media
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db
PHOTO = b"\xff\xd8\xff\xe0 a photo of the router's lights \xff\xd9"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    # Staff users are made by the factories; a fast hasher keeps these tests quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def login(client, user):
    """A staff session that passed the second factor (the console's precondition)."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts.tests.helpers import verified_device

    client.force_login(user)
    device = verified_device(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def _b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def photo_message(graph, *, conversation=None, data=PHOTO, announced_sha256=None, **kwargs):
    media_id = graph.add_media(data, "image/jpeg")
    return MessageFactory(
        conversation=conversation or ConversationFactory(),
        type=Message.Type.IMAGE,
        text="",
        media_id=media_id,
        media_mime_type="image/jpeg",
        media_sha256=announced_sha256 or _b64sha(data),  # webhooks announce base64
        **kwargs,
    )


def test_download_stores_the_file_through_the_default_storage(graph, tmp_path):
    message = photo_message(graph)

    assert download_media.delay(message.pk).get() == "stored"

    message.refresh_from_db()
    assert message.media_file.name.startswith("media/") and message.media_file.name.endswith(".jpg")
    with default_storage.open(message.media_file.name) as stored:
        assert stored.read() == PHOTO
    assert message.media_size == len(PHOTO) == default_storage.size(message.media_file.name)
    # At rest the bytes are encrypted (ispsupport.storage): nothing of the photo is on disk.
    on_disk = (tmp_path / message.media_file.name).read_bytes()
    assert on_disk.startswith(filecrypt.MAGIC)
    assert b"router's lights" not in on_disk and PHOTO not in on_disk


def test_a_sha256_mismatch_stores_nothing(graph, tmp_path):
    message = photo_message(graph, announced_sha256=_b64sha(b"something else"))

    assert download_media.delay(message.pk).get() == "rejected"

    message.refresh_from_db()
    assert not message.media_file
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_downloading_twice_fetches_once(graph):
    message = photo_message(graph)

    download_media.delay(message.pk)
    assert download_media.delay(message.pk).get() == "already"

    assert [r.path.rsplit("/", 1)[-1] for r in graph.requests].count(message.media_id) == 1


def test_a_transient_graph_error_is_retried(graph):
    graph.push_http(500, endpoint="media")
    message = photo_message(graph)

    assert download_media.delay(message.pk).get() == "stored"


def test_an_expired_download_url_is_fetched_anew(graph):
    # Meta's URLs live 5 minutes; a 404 on the download means "ask for a new URL".
    graph.push_http(404, endpoint="download")
    message = photo_message(graph)

    assert download_media.delay(message.pk).get() == "stored"

    paths = [r.path for r in graph.requests if message.media_id in r.path]
    downloads = [p for p in paths if "/media-download/" in p]
    assert len(paths) - len(downloads) == 2  # a second GET /{media-id} for a fresh URL
    assert len(downloads) == 2  # the expired URL, then the fresh one
    message.refresh_from_db()
    assert message.media_file


def test_a_download_url_that_keeps_answering_404_stores_nothing(graph, tmp_path):
    graph.push_http(404, endpoint="download", times=2)
    message = photo_message(graph)

    assert download_media.delay(message.pk).get() == "failed"

    message.refresh_from_db()
    assert not message.media_file
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_both_sha256_spellings_meta_uses_are_accepted():
    digest = hashlib.sha256(PHOTO).hexdigest()
    assert media.sha256_matches(digest.upper(), digest)
    assert media.sha256_matches(_b64sha(PHOTO), digest)
    assert not media.sha256_matches("IMAGE_HASH", digest)


# --- the media view ---------------------------------------------------------------------------


@pytest.fixture
def stored_photo(graph, agent, team_support):
    conversation = ConversationFactory(
        team=team_support, assigned_agent=agent, state=Conversation.State.ASSIGNED
    )
    message = photo_message(graph, conversation=conversation, media_filename="roteador.jpg")
    download_media.delay(message.pk)
    return message


def test_the_media_view_refuses_anonymous_visitors(client, stored_photo):
    response = client.get(f"/media/{stored_photo.pk}/")
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("user", ["other_agent", "dpo"])
def test_the_media_view_hides_other_teams_media(client, stored_photo, request, user):
    login(client, request.getfixturevalue(user))
    assert client.get(f"/media/{stored_photo.pk}/").status_code == 404


@pytest.mark.parametrize("user", ["agent", "admin_member"])
def test_the_media_view_serves_the_assigned_agent_and_admins(client, stored_photo, request, user):
    login(client, request.getfixturevalue(user))

    response = client.get(f"/media/{stored_photo.pk}/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PHOTO  # decrypted for the viewer
    assert response["Content-Length"] == str(len(PHOTO))  # the plaintext's, not the file's
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == 'inline; filename="roteador.jpg"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    from compliance.models import AccessLogEntry

    entry = AccessLogEntry.objects.get(action="view_media")
    assert (entry.object_id, entry.customer_id) == (
        str(stored_photo.pk),
        stored_photo.conversation.customer_id,
    )


def test_documents_are_served_as_attachments(client, agent, graph):
    conversation = ConversationFactory(assigned_agent=agent, state=Conversation.State.ASSIGNED)
    message = photo_message(graph, conversation=conversation, media_filename="contrato.html")
    Message.objects.filter(pk=message.pk).update(media_mime_type="text/html")
    download_media.delay(message.pk)
    Message.objects.filter(pk=message.pk).update(media_mime_type="text/html")
    login(client, agent)

    response = client.get(f"/media/{message.pk}/")

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")


def test_the_media_view_answers_404_for_a_message_without_a_file(client, agent):
    message = MessageFactory(conversation=ConversationFactory())
    login(client, agent)
    assert client.get(f"/media/{message.pk}/").status_code == 404
