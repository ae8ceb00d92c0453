"""The simulator's doors: Graph endpoints (what the client calls) and the customer's phone page.

Every view here is ``async def`` and touches neither the ORM nor Django's sync thread: under
``make run`` one daphne process serves everything and Celery runs inline, so a webhook that our
(sync) view processes may call the Graph simulator in the same process while it waits. Webhooks
caused by a request are posted by ``state.WebhookPoster`` after the response.

Only mounted when ``settings.SIMULATOR_ENABLED`` (on in DEBUG, off in production).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from whatsapp.simulator import meta
from whatsapp.simulator.state import SIM, RecordedRequest, Scripted

_WA_ID = re.compile(r"\d{10,15}")
UPLOAD_MAX_BYTES = 5 * 1024 * 1024
MEDIA_URL_TTL_SECONDS = 300  # Meta's download URLs live 5 minutes


def _bearer_ok(request: HttpRequest) -> bool:
    expected = f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}"
    return hmac.compare_digest(request.headers.get("Authorization", ""), expected)


def _meta_error(code: int, details: str | None = None, title: str | None = None) -> JsonResponse:
    status, body = meta.error_body(code, title=title, details=details)
    return JsonResponse(body, status=status)


def _record(request: HttpRequest, body: Any) -> RecordedRequest:
    recorded = RecordedRequest(
        method=request.method or "",
        path=request.path,
        authorization=request.headers.get("Authorization", ""),
        body=body,
        query=dict(request.GET.items()),
    )
    SIM.record(recorded)
    return recorded


async def _scripted(item: Scripted) -> HttpResponse:
    response = await _scripted_response(item)
    if item.retry_after is not None:
        response["Retry-After"] = str(max(0, round(item.retry_after)))
    return response


async def _scripted_response(item: Scripted) -> HttpResponse:
    if item.kind == "timeout":
        # The client has given up by now; answer something no client takes for a send.
        await asyncio.sleep(item.seconds)
        return HttpResponse(status=204)
    if item.kind == "http":
        if item.body is None:
            try:
                phrase = HTTPStatus(item.status).phrase
            except ValueError:
                phrase = "Error"
            return HttpResponse(phrase, status=item.status, content_type="text/plain")
        return JsonResponse(item.body, status=item.status, safe=False)
    response = _meta_error(item.code or 131000, details=item.details, title=item.title)
    if item.status and item.status != 200:
        response.status_code = item.status
    return response


async def _take_scripted(endpoint: str) -> Scripted | None:
    """The scripted answer for this request (None: answer normally, after any hold).

    A held request that its client abandons is cancelled here (Django cancels the view when
    the connection closes), so it is never handled: Meta never saw it.
    """
    item = SIM.take_scripted(endpoint)
    if item is None or item.kind != "hold":
        return item
    with SIM.lock:
        SIM.held += 1
        SIM.held_total += 1
    try:
        await asyncio.sleep(item.seconds)
    finally:
        with SIM.lock:
            SIM.held -= 1
    return None


def _parse_json(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None


# --- Graph API ----------------------------------------------------------------------------------


@csrf_exempt
@require_POST
async def graph_messages(request: HttpRequest, version: str, phone_number_id: str) -> HttpResponse:
    """``POST /{version}/{phone-number-id}/messages``: sends and read receipts."""
    body = _parse_json(request)
    recorded = _record(request, body)
    response = await _graph_messages(request, body, phone_number_id)
    recorded.status = response.status_code
    return response


async def _graph_messages(request: HttpRequest, body: Any, phone_number_id: str) -> HttpResponse:
    scripted = await _take_scripted("messages")
    if scripted is not None:
        return await _scripted(scripted)
    if not _bearer_ok(request):
        return _meta_error(190, title="Invalid OAuth access token - Cannot parse access token")
    if phone_number_id not in settings.WHATSAPP_PHONE_NUMBER_IDS:
        return _meta_error(
            100,
            title=f"Unsupported post request. Object with ID '{phone_number_id}' does not exist",
        )
    if not isinstance(body, dict):
        return _meta_error(100, details="The request body must be JSON.")
    if body.get("status") == "read":
        if body.get("messaging_product") != "whatsapp" or not body.get("message_id"):
            return _meta_error(131008, details="message_id is required.")
        SIM.mark_business_read(str(body["message_id"]))
        return JsonResponse({"success": True})
    try:
        meta.validate_send(body)
    except meta.Invalid as exc:
        return _meta_error(exc.code, details=exc.details)
    recipient = str(body.get("to") or body.get("recipient"))
    key = recipient.lstrip("+")
    wamid = SIM.take_wamid()
    SIM.add_outbound(key, wamid=wamid, phone_number_id=phone_number_id, body=body)
    SIM.schedule_statuses(key=key, wamid=wamid, phone_number_id=phone_number_id, recipient=key)
    return JsonResponse(meta.success_body(recipient, wamid))


@csrf_exempt
@require_POST
async def graph_media_upload(
    request: HttpRequest, version: str, phone_number_id: str
) -> HttpResponse:
    """``POST /{version}/{phone-number-id}/media``: an upload (multipart), kept in memory."""
    upload = request.FILES.get("file")
    recorded = _record(
        request,
        {
            "messaging_product": request.POST.get("messaging_product", ""),
            "type": request.POST.get("type", ""),
            "file": (
                {
                    "name": upload.name,
                    "size": upload.size,
                    "mime_type": (upload.content_type or "").split(";")[0],
                }
                if upload is not None
                else None
            ),
        },
    )
    response = await _graph_media_upload(request, upload, phone_number_id)
    recorded.status = response.status_code
    return response


async def _graph_media_upload(
    request: HttpRequest, upload: Any, phone_number_id: str
) -> HttpResponse:
    scripted = await _take_scripted("upload")
    if scripted is not None:
        return await _scripted(scripted)
    if not _bearer_ok(request):
        return _meta_error(190, title="Invalid OAuth access token - Cannot parse access token")
    if phone_number_id not in settings.WHATSAPP_PHONE_NUMBER_IDS:
        return _meta_error(
            100,
            title=f"Unsupported post request. Object with ID '{phone_number_id}' does not exist",
        )
    if request.POST.get("messaging_product") != "whatsapp":
        return _meta_error(100, details="messaging_product is required.")
    mime = request.POST.get("type", "").split(";")[0].strip().lower()
    if upload is None or not mime:
        return _meta_error(100, details="file and type are required.")
    limit = meta.UPLOAD_LIMITS.get(mime)
    if limit is None:
        return _meta_error(131053, details=f"Unsupported file type {mime}.")
    if upload.size > limit:
        return _meta_error(131053, details="The file is larger than the limit for its type.")
    media_id = SIM.add_media(upload.read(), mime, upload.name or "")
    return JsonResponse({"id": media_id})


def _download_signature(media_id: str, expires: int) -> str:
    message = f"{media_id}:{expires}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:32]


@require_GET
@require_GET
async def graph_templates(request: HttpRequest, version: str, waba_id: str) -> HttpResponse:
    """``GET /{version}/{waba-id}/message_templates``: the account's templates, cursor-paged."""
    recorded = _record(request, None)
    response = await _graph_templates(request)
    recorded.status = response.status_code
    return response


async def _graph_templates(request: HttpRequest) -> HttpResponse:
    scripted = await _take_scripted("templates")
    if scripted is not None:
        return await _scripted(scripted)
    if not _bearer_ok(request):
        return _meta_error(190, title="Invalid OAuth access token - Cannot parse access token")
    try:
        limit = max(1, min(int(request.GET.get("limit", "25")), 250))
        start = int(base64.urlsafe_b64decode(request.GET.get("after", "") or "MA==").decode())
    except ValueError:
        return _meta_error(100, title="Invalid parameter")
    with SIM.lock:
        rows = [dict(t) for t in SIM.templates]
    page = rows[start : start + limit]
    body: dict[str, Any] = {"data": page, "paging": {}}
    if start + limit < len(rows):
        after = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        query = request.GET.copy()
        query["after"] = after
        body["paging"] = {
            "cursors": {"after": after},
            "next": request.build_absolute_uri(request.path) + "?" + query.urlencode(),
        }
    return JsonResponse(body)


async def graph_media_info(request: HttpRequest, version: str, media_id: str) -> HttpResponse:
    """``GET /{version}/{media-id}``: a 5-minute download URL and the file's facts."""
    recorded = _record(request, None)
    response = await _graph_media_info(request, media_id)
    recorded.status = response.status_code
    return response


async def _graph_media_info(request: HttpRequest, media_id: str) -> HttpResponse:
    scripted = await _take_scripted("media")
    if scripted is not None:
        return await _scripted(scripted)
    if not _bearer_ok(request):
        return _meta_error(190, title="Invalid OAuth access token - Cannot parse access token")
    item = SIM.media.get(media_id)
    if item is None:
        return _meta_error(
            100, title=f"Unsupported get request. Object with ID '{media_id}' does not exist"
        )
    expires = int(time.time()) + MEDIA_URL_TTL_SECONDS
    url = request.build_absolute_uri(reverse("simulator:media-download", args=[media_id]))
    url += f"?ext={expires}&hash={_download_signature(media_id, expires)}"
    return JsonResponse(
        {
            "url": url,
            "mime_type": item.mime_type,
            "sha256": item.sha256_hex,
            "file_size": len(item.data),
            "id": media_id,
            "messaging_product": "whatsapp",
        }
    )


@require_GET
async def graph_media_download(request: HttpRequest, media_id: str) -> HttpResponse:
    """The short-lived URL itself: the bearer token is required, as at Meta's lookaside host."""
    recorded = _record(request, None)
    scripted = await _take_scripted("download")
    if scripted is not None:
        response = await _scripted(scripted)
    else:
        response = _media_download(request, media_id)
    recorded.status = response.status_code
    return response


def _media_download(request: HttpRequest, media_id: str) -> HttpResponse:
    if not _bearer_ok(request):
        return HttpResponse(status=401)
    try:
        expires = int(request.GET.get("ext", "0"))
    except ValueError:
        expires = 0
    signature = request.GET.get("hash", "")
    item = SIM.media.get(media_id)
    if (
        item is None
        or expires < time.time()
        or not hmac.compare_digest(signature, _download_signature(media_id, expires))
    ):
        return HttpResponse(status=404)  # Meta: 404 means "fetch a new URL"
    return HttpResponse(item.data, content_type=item.mime_type)


# --- The customer's phone -----------------------------------------------------------------------


@ensure_csrf_cookie
@require_GET
async def phone(request: HttpRequest) -> HttpResponse:
    numbers = [
        {"id": pnid, "display": meta.display_number(pnid)}
        for pnid in settings.WHATSAPP_PHONE_NUMBER_IDS
    ]
    strings = {
        "sent": _("enviada"),
        "delivered": _("entregue"),
        "read": _("lida"),
        "failed": _("falhou"),
        "pending": _("enviando…"),
        "template": _("Modelo"),
        "reply": _("em resposta"),
        "openList": _("Ver opções"),
        "error": _("Não foi possível enviar. O servidor respondeu %s."),
        "emptyThread": _("Nenhuma mensagem ainda. Escreva como se fosse o cliente."),
        "media": _("mídia"),
        "lastWebhook": _("Último webhook"),
        "message": _("mensagem"),
        "status": _("status"),
        "unreachable": _("sem resposta"),
    }
    return render(
        request,
        "whatsapp/simulator/phone.html",
        {
            "numbers": numbers,
            "strings": strings,
            "webhook_url": settings.SIMULATOR_WEBHOOK_URL,
            "default_wa_id": "5511999990001",
        },
    )


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@require_POST
async def api_send(request: HttpRequest) -> HttpResponse:
    """The customer sends something: it becomes a signed webhook to our endpoint."""
    if request.content_type == "application/json":
        data = _parse_json(request)
        upload = None
    else:
        data = request.POST.dict()
        upload = request.FILES.get("file")
    if not isinstance(data, dict):
        return _error(_("Corpo inválido."))
    wa_id = str(data.get("wa_id", "")).strip()
    name = str(data.get("name", "")).strip()[:60] or _("Cliente")
    phone_number_id = str(data.get("phone_number_id") or settings.WHATSAPP_PHONE_NUMBER_IDS[0])
    if not _WA_ID.fullmatch(wa_id):
        return _error(_("Número inválido: use DDI + DDD + número, só dígitos."))
    if phone_number_id not in settings.WHATSAPP_PHONE_NUMBER_IDS:
        return _error(_("Número da empresa desconhecido."))
    try:
        message, view = _inbound_message(data, upload)
    except ValueError as exc:
        return _error(str(exc))
    wamid = "wamid.SIMIN" + secrets.token_hex(12).upper()
    message["id"] = wamid
    context = str(data.get("context") or "")
    if context:
        message["context"] = {"from": meta.display_number(phone_number_id), "id": context}
        view["reply_to"] = context
    SIM.add_inbound(wa_id, name=name, wamid=wamid, phone_number_id=phone_number_id, view=view)
    label = f"message:{wamid}"
    SIM.poster.after_post(label, lambda: SIM.set_status(wamid, "delivered"))
    SIM.post_webhook(
        label,
        meta.inbound_envelope(
            phone_number_id=phone_number_id, wa_id=wa_id, name=name, message=message
        ),
    )
    return JsonResponse({"wamid": wamid}, status=201)


def _inbound_message(data: dict[str, Any], upload: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Meta's inbound message object (without id/from/timestamp) and the page's view of it."""
    kind = str(data.get("kind") or "text")
    text = str(data.get("text") or "")
    if kind == "text":
        if not text.strip() or len(text) > 4096:
            raise ValueError(_("Escreva uma mensagem (até 4.096 caracteres)."))
        return {"type": "text", "text": {"body": text}}, {"kind": "text", "text": text}
    if kind in ("button_reply", "list_reply"):
        reply_id, title = str(data.get("reply_id") or ""), str(data.get("reply_title") or "")
        if not reply_id or not title:
            raise ValueError(_("Resposta sem identificador."))
        reply = {"id": reply_id, "title": title}
        if kind == "list_reply" and data.get("description"):
            reply["description"] = str(data["description"])
        return (
            {"type": "interactive", "interactive": {"type": kind, kind: reply}},
            {"kind": "interactive", "text": title},
        )
    if kind == "quick_reply":  # a template's quick-reply button
        payload, title = str(data.get("reply_id") or ""), str(data.get("reply_title") or "")
        return (
            {"type": "button", "button": {"payload": payload, "text": title}},
            {"kind": "button", "text": title},
        )
    if kind == "media":
        if upload is None:
            raise ValueError(_("Escolha um arquivo."))
        if upload.size > UPLOAD_MAX_BYTES:
            raise ValueError(_("Arquivo grande demais (máximo 5 MB)."))
        content = upload.read()
        mime = (upload.content_type or "application/octet-stream").split(";")[0]
        media_kind = "image" if mime in ("image/jpeg", "image/png") else "document"
        media_id = SIM.add_media(content, mime, upload.name or "")
        obj: dict[str, Any] = {
            "id": media_id,
            "mime_type": mime,
            # Webhooks announce sha256 in base64 (the media endpoint in hex), as Meta does.
            "sha256": base64.b64encode(hashlib.sha256(content).digest()).decode(),
        }
        if text:
            obj["caption"] = text[:1024]
        if media_kind == "document":
            obj["filename"] = (upload.name or "arquivo")[:240]
        view = {"kind": media_kind, "text": text, "media": {"kind": media_kind}}
        return {"type": media_kind, media_kind: obj}, view
    raise ValueError(_("Tipo de mensagem desconhecido."))


@require_GET
async def api_thread(request: HttpRequest) -> HttpResponse:
    """The conversation as the customer's phone shows it; 204 when nothing changed.

    ``seen=1`` (the page is visible) marks the business's messages read and posts "read".
    """
    wa_id = request.GET.get("wa_id", "")
    if not _WA_ID.fullmatch(wa_id):
        return _error(_("Número inválido."))
    if request.GET.get("seen") == "1":
        for message in SIM.unread_outbound(wa_id):
            SIM.set_status(message.wamid, "read")
            SIM.post_webhook(
                f"status:read:{message.wamid}",
                meta.status_envelope(
                    phone_number_id=message.phone_number_id,
                    wamid=message.wamid,
                    status="read",
                    recipient=wa_id,
                ),
            )
    snapshot = SIM.thread_snapshot(wa_id)
    if request.GET.get("v") == str(snapshot["version"]):
        return HttpResponse(status=204)
    last = SIM.webhook_log[-1] if SIM.webhook_log else None
    snapshot["last_webhook"] = (
        {"label": last.label.split(":")[0], "status": last.status, "error": last.error}
        if last
        else None
    )
    return JsonResponse(snapshot)


_FAULT_KINDS = ("error", "http", "timeout", "hold")
_FAULT_ENDPOINTS = ("messages", "upload", "media", "templates", "any")


def _fault_from(data: dict[str, Any]) -> tuple[Scripted, int, float | None]:
    """A ``Scripted`` answer, how many times and for how long, from the control API's JSON."""
    kind = str(data.get("kind") or "")
    endpoint = str(data.get("endpoint") or "messages")
    if kind not in _FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(_FAULT_KINDS)}")
    if endpoint not in _FAULT_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(_FAULT_ENDPOINTS)}")
    try:
        times = int(data.get("times", 1))
        window = float(data["for_seconds"]) if data.get("for_seconds") is not None else None
        seconds = float(data.get("seconds", 0))
        code = int(data["code"]) if data.get("code") is not None else None
        status = int(data["status"]) if data.get("status") is not None else None
        retry_after = float(data["retry_after"]) if data.get("retry_after") is not None else None
    except (TypeError, ValueError):
        raise ValueError(
            "times, for_seconds, seconds, code, status, retry_after: numbers"
        ) from None
    if not 1 <= times <= 10_000 or (window is not None and not 0 < window <= 3600):
        raise ValueError("times: 1 to 10000; for_seconds: up to 3600")
    if not 0 <= seconds <= 600:
        raise ValueError("seconds: 0 to 600")
    if kind == "error":
        code = code or 131000
        status = status or meta.error_body(code)[0]
    elif kind == "http":
        if status is None or not 400 <= status <= 599:
            raise ValueError("an http fault needs a status between 400 and 599")
    elif seconds <= 0:
        raise ValueError(f"a {kind} fault needs seconds > 0")
    answer = Scripted(kind, endpoint, status or 200, code, seconds=seconds, retry_after=retry_after)
    return answer, times, window


@csrf_exempt  # a JSON control for tests and demos in another process; the simulator is dev-only
async def api_faults(request: HttpRequest) -> HttpResponse:
    """Script the Graph endpoints' answers from another process (the local fleet's tests).

    ``POST`` JSON ``{"kind": "error"|"http"|"timeout"|"hold", "endpoint": "messages",
    "code": 130429, "status": 429, "retry_after": 2, "seconds": 5, "times": 3}`` queues the
    answer for the next ``times`` requests, or with ``"for_seconds": 30`` answers every request
    so for that long (the latest window wins over earlier ones). ``DELETE`` forgets every fault. ``GET`` (and both others) answer what is
    scripted, how many requests are held now and what was answered per endpoint and status.
    """
    if request.method == "DELETE":
        SIM.clear_faults()
    elif request.method == "POST":
        data = _parse_json(request)
        if not isinstance(data, dict):
            return _error("JSON object expected")
        try:
            answer, times, window = _fault_from(data)
        except ValueError as exc:
            return _error(str(exc))
        if window is not None:
            SIM.add_window(answer, seconds=window)
        else:
            with SIM.lock:
                SIM.script.extend([answer] * times)
    elif request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET, POST, DELETE"})
    return JsonResponse(SIM.faults_state())


@require_POST
async def api_reset(request: HttpRequest) -> HttpResponse:
    """Forget one customer's thread on the phone (the server keeps its records)."""
    wa_id = request.POST.get("wa_id", "")
    with SIM.lock:
        if SIM.threads.pop(wa_id, None) is not None:
            SIM.version += 1
    return HttpResponse(status=204)
