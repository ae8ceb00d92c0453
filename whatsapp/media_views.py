"""``/media/<message_id>/``: a customer's media file, for staff who may see that conversation.

Access follows the console's visibility rule (``conversations.selectors``): admins any; agents
and supervisors their teams' conversations, conversations without a team and those assigned to
them. The DPO reaches media only through the compliance export. Everyone else gets 404 (ids of
other teams' conversations are not confirmed); anonymous visitors are sent to the log-in page.
The file is never cached and never sniffed; only images, audio and video are shown inline.
Every file served is written to the personal-data access log (``view_media``).
"""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from compliance.models import AccessLogEntry
from compliance.services import access_log_record
from conversations.models import Message
from conversations.selectors import conversations_visible_to
from ispsupport.security import client_ip

_INLINE_PREFIXES = ("image/", "audio/", "video/")
_NEVER_INLINE = {"image/svg+xml"}  # scripts inside SVG


@never_cache
@require_GET
def message_media(request: HttpRequest, message_id: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
    message = (
        Message.objects.filter(pk=message_id)
        .only("pk", "conversation_id", "media_file", "media_mime_type", "media_filename", "type")
        .first()
    )
    if message is None or not message.media_file:
        raise Http404
    conversation = (
        conversations_visible_to(request.user)
        .filter(pk=message.conversation_id)
        .values("customer_id", "team_id")
        .first()
    )
    if conversation is None:
        raise Http404
    try:
        handle = default_storage.open(message.media_file.name, "rb")
    except FileNotFoundError:
        raise Http404 from None
    access_log_record(
        user=request.user,
        customer_id=conversation["customer_id"],
        action=AccessLogEntry.Action.VIEW_MEDIA,
        ip=client_ip(request),
        object_type="message",
        object_id=message.pk,
        team_id=conversation["team_id"],
    )
    mime = (message.media_mime_type or "application/octet-stream").split(";", 1)[0].strip()
    inline = mime.startswith(_INLINE_PREFIXES) and mime not in _NEVER_INLINE
    filename = message.media_filename or _default_filename(message, mime)
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=filename,
        content_type=mime if inline else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _default_filename(message: Message, mime: str) -> str:
    return f"{message.type}-{message.pk}{mimetypes.guess_extension(mime) or ''}"
