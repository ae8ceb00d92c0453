"""DRF authentication by personal API token: ``Authorization: Bearer isp_…``.

Requests without a bearer ``isp_`` header are left to the next class (session authentication
for the console). A bad, expired or revoked token, or one whose user is inactive, gets 401.
Scope is enforced here, for every API view whatever its permission classes: a ``read`` token
gets 403 on unsafe methods (anything but GET, HEAD, OPTIONS).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts import metrics, services
from accounts.models import ApiToken
from ispsupport.security import audit_set_actor


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Cabeçalho Authorization inválido."))
        try:
            secret = header[1].decode("ascii")
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed(_("Token inválido.")) from exc
        if not secret.startswith(services.API_TOKEN_PREFIX):
            return None  # someone else's bearer scheme
        token = services.api_token_authenticate(secret=secret)
        metrics.API_TOKEN_AUTH.labels(result="invalid" if token is None else "ok").inc()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Token inválido, expirado ou revogado."))
        enforce_token_scope(request.method, token)
        audit_set_actor(token.user)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


def enforce_token_scope(method: str, token: ApiToken) -> None:
    """Raise 403 when a read-only token attempts an unsafe method."""
    if token.scope != ApiToken.Scope.WRITE and method not in SAFE_METHODS:
        raise exceptions.PermissionDenied(_("Este token é somente leitura."))


class TokenHasScope(BasePermission):
    """Permission class for views that want the scope check explicit (it is also enforced by
    the authentication class): session users pass; tokens need ``write`` for unsafe methods."""

    message = _("Este token é somente leitura.")

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        return request.method in SAFE_METHODS or token.scope == ApiToken.Scope.WRITE
