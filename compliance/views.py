"""Download of a data export: the link's token is the credential (it is sent to the subject
on the channel they chose), it expires, and every download goes to the access log."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from compliance import services
from ispsupport import security


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as every other log records it (``TRUSTED_PROXY_COUNT`` aware)."""
    return security.client_ip(request) or None


@never_cache
@require_GET
def export_download(request: HttpRequest, token: str) -> FileResponse:
    user = request.user if request.user.is_authenticated else None
    export = services.export_open_for_download(token=token, user=user, ip=client_ip(request))
    if export is None:
        raise Http404("link inválido ou expirado")
    response = FileResponse(
        export.file.open("rb"),
        as_attachment=True,
        filename=f"meus-dados-{export.request_id}.zip",
        content_type="application/zip",
    )
    response["Referrer-Policy"] = "no-referrer"
    return response
