"""The console's operations as a REST API under ``/api/v1/`` (DRF + drf-spectacular).

One view per operation (``<Entity><Action>Api``) with nested Input/Output serializers. The same
rules as the console: ``access.user_may_use_console`` to get in, the selectors for who may see
what (others' conversations answer 404), the services for what may be done. Lists use keyset
cursors (``next_cursor``). Every error is ``{"code": ..., "message": ...}`` in the request's
language (Accept-Language: pt-BR or en), plus ``fields`` for invalid input.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Presence, Team, User
from compliance.models import AccessLogEntry
from conversations import access, hooks, selectors, services
from conversations.models import Conversation, Customer, Message
from ispsupport.security import client_ip

# --- errors -------------------------------------------------------------------------------------

_SERVICE_STATUS = {
    services.ActionNotAllowed: 403,
    services.AgentNotAllowed: 403,
    services.AlreadyAssigned: 409,
    services.InvalidTransition: 409,
    services.WindowClosed: 409,
    services.InvalidInput: 400,
}


class ApiError(exceptions.APIException):
    def __init__(self, code: str, message: str, status_code: int = 400) -> None:
        self.status_code = status_code
        self.error_code = code
        super().__init__(detail=message, code=code)


def _service_error(error: services.ServiceError) -> ApiError:
    status_code = 400
    for cls in type(error).__mro__:
        if cls in _SERVICE_STATUS:
            status_code = _SERVICE_STATUS[cls]
            break
    return ApiError(error.code, str(error.message), status_code)


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """``{"code", "message"}`` for every error (never Django's HTML pages)."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Não encontrado."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, services.ServiceError):
        exc = _service_error(exc)
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: let it be a 500 and reach the logs
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, ApiError):
        body = {"code": exc.error_code, "message": str(exc.detail)}
    elif isinstance(exc, exceptions.ValidationError):
        body = {
            "code": "invalid_input",
            "message": _first_message(exc.detail),
            "fields": exc.detail if isinstance(exc.detail, dict) else {},
        }
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        body = {"code": code, "message": _first_message(exc.detail)}
    return Response(body, status=exc.status_code, headers=headers)


@csrf_exempt  # nothing happens here; a CSRF page would not be JSON
def not_found(request, *args, **kwargs) -> JsonResponse:
    return JsonResponse({"code": "not_found", "message": _("Não encontrado.")}, status=404)


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


ERRORS = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    409: ErrorSerializer,
}


# --- base ---------------------------------------------------------------------------------------


class IsConsoleUser(BasePermission):
    """Agents, supervisors and admins (the DPO and others are refused)."""

    def has_permission(self, request, view) -> bool:
        return access.user_may_use_console(request.user)


class ConsoleApi(APIView):
    permission_classes = [IsConsoleUser]

    def get_exception_handler(self):
        return api_exception_handler

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated()
        raise ApiError(
            "permission_denied",
            _("Você não tem permissão para usar o atendimento."),
            status.HTTP_403_FORBIDDEN,
        )

    def conversation(self, pk: Any) -> Conversation:
        try:
            return selectors.conversation_get_for_user(user=self.request.user, pk=pk)
        except Conversation.DoesNotExist:
            raise ApiError("not_found", _("Conversa não encontrada."), 404) from None

    @staticmethod
    def fresh(pk: Any) -> Conversation:
        """The conversation after an authorized action, even if the actor no longer sees it
        (e.g. they transferred it to another team)."""
        return Conversation.objects.select_related(
            "customer", "team", "assigned_agent", "last_message"
        ).get(pk=pk)

    @staticmethod
    def validated(serializer_class, data) -> dict[str, Any]:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


# --- shared output shapes -----------------------------------------------------------------------


class CustomerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    phone_masked = serializers.CharField(source="masked_phone")
    cpf_masked = serializers.CharField(source="masked_cpf")
    contract_ref = serializers.CharField()
    username = serializers.CharField()
    status = serializers.CharField()


class StaffOutput(serializers.Serializer):
    id = serializers.UUIDField()
    username = serializers.CharField()
    name = serializers.SerializerMethodField()

    def get_name(self, obj: User) -> str:
        return obj.get_full_name() or obj.username


class TeamOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class ConversationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    protocol = serializers.CharField()
    state = serializers.CharField()
    priority = serializers.IntegerField()
    customer = CustomerOutput()
    team = TeamOutput(allow_null=True)
    assigned_agent = StaffOutput(allow_null=True)
    opened_at = serializers.DateTimeField()
    waiting_since = serializers.DateTimeField(allow_null=True)
    last_message_at = serializers.DateTimeField(allow_null=True)
    last_customer_message_at = serializers.DateTimeField(allow_null=True)
    window_expires_at = serializers.DateTimeField(allow_null=True)
    template_required = serializers.BooleanField()
    unread_count = serializers.IntegerField()
    closed_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.CharField()
    csat_score = serializers.IntegerField(allow_null=True)


class MessageOutput(serializers.Serializer):
    id = serializers.IntegerField()
    direction = serializers.CharField()
    sender_kind = serializers.CharField()
    sender_user = StaffOutput(allow_null=True)
    type = serializers.CharField()
    text = serializers.CharField()
    status = serializers.CharField()
    error_code = serializers.IntegerField(allow_null=True)
    error_title = serializers.CharField()
    reply_to_id = serializers.IntegerField(allow_null=True)
    media_mime_type = serializers.CharField()
    media_filename = serializers.CharField()
    has_media_file = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_has_media_file(self, obj: Message) -> bool:
        return bool(obj.media_file)


def _page(serializer_class, rows, next_cursor) -> dict[str, Any]:
    return {"results": serializer_class(rows, many=True).data, "next_cursor": next_cursor}


def _page_schema(name: str, item) -> Any:
    return inline_serializer(
        name=name,
        fields={
            "results": item(many=True),
            "next_cursor": serializers.CharField(allow_null=True),
        },
    )


CURSOR = OpenApiParameter("cursor", OpenApiTypes.STR, description="next_cursor of the last page")
LIMIT = OpenApiParameter("limit", OpenApiTypes.INT, description="1–200 (default 50)")


def _limit(request) -> int:
    raw = request.query_params.get("limit") or "50"
    try:
        value = int(raw)
    except ValueError:
        raise ApiError("invalid_input", _("limit deve ser um número."), 400) from None
    if not 1 <= value <= 200:
        raise ApiError("invalid_input", _("limit deve estar entre 1 e 200."), 400)
    return value


# --- conversations ------------------------------------------------------------------------------


class ConversationListApi(ConsoleApi):
    class ConversationListFilterInput(serializers.Serializer):
        queue = serializers.ChoiceField(choices=list(selectors.QUEUES), default="waiting")
        q = serializers.CharField(required=False, allow_blank=True, max_length=100)
        state = serializers.ChoiceField(choices=Conversation.State.choices, required=False)
        team = serializers.IntegerField(required=False, min_value=1)
        priority = serializers.ChoiceField(choices=Conversation.Priority.choices, required=False)
        protocol = serializers.CharField(required=False, max_length=20)

    @extend_schema(
        operation_id="conversations_list",
        parameters=[ConversationListFilterInput, CURSOR, LIMIT],
        responses={200: _page_schema("ConversationPage", ConversationOutput), **ERRORS},
    )
    def get(self, request):
        data = self.validated(self.ConversationListFilterInput, request.query_params)
        if data["queue"] not in selectors.queues_for_user(request.user):
            raise ApiError("not_allowed", _("Esta fila é só para supervisores."), 403)
        try:
            page = selectors.conversation_list_for_user(
                user=request.user,
                queue=data["queue"],
                search=data.get("q", ""),
                cursor=request.query_params.get("cursor") or None,
                limit=_limit(request),
                filters={k: data.get(k) for k in ("state", "team", "priority", "protocol")},
            )
        except selectors.InvalidCursor:
            raise ApiError("invalid_cursor", _("Cursor inválido."), 400) from None
        return Response(_page(ConversationOutput, page.rows, page.next_cursor))


class ConversationDetailApi(ConsoleApi):
    @extend_schema(
        operation_id="conversations_retrieve", responses={200: ConversationOutput, **ERRORS}
    )
    def get(self, request, pk: int):
        conversation = self.conversation(pk)
        selectors.conversation_shown_to_staff(
            user=request.user,
            conversation=conversation,
            ip=client_ip(request) or None,
            repeat=True,
            action=AccessLogEntry.Action.API_READ,
        )
        return Response(ConversationOutput(conversation).data)


class ConversationClaimApi(ConsoleApi):
    @extend_schema(
        operation_id="conversations_claim",
        request=None,
        responses={200: ConversationOutput, **ERRORS},
    )
    def post(self, request, pk: int):
        conversation = self.conversation(pk)
        conversation = services.conversation_claim(conversation=conversation, agent=request.user)
        return Response(ConversationOutput(self.fresh(conversation.pk)).data)


def _user(pk: Any, field: str) -> User:
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None:
        raise ApiError("invalid_input", _("Atendente não encontrado."), 400)
    return user


class ConversationAssignApi(ConsoleApi):
    class ConversationAssignInput(serializers.Serializer):
        agent_id = serializers.UUIDField()

    @extend_schema(
        operation_id="conversations_assign",
        request=ConversationAssignInput,
        responses={200: ConversationOutput, **ERRORS},
    )
    def post(self, request, pk: int):
        data = self.validated(self.ConversationAssignInput, request.data)
        conversation = self.conversation(pk)
        services.conversation_assign_by_staff(
            conversation=conversation, agent=_user(data["agent_id"], "agent_id"), actor=request.user
        )
        return Response(ConversationOutput(self.fresh(pk)).data)


class ConversationTransferApi(ConsoleApi):
    class ConversationTransferInput(serializers.Serializer):
        team_id = serializers.IntegerField(required=False, min_value=1)
        agent_id = serializers.UUIDField(required=False)
        note = serializers.CharField(required=False, allow_blank=True, max_length=4000)

        def validate(self, attrs):
            if not attrs.get("team_id") and not attrs.get("agent_id"):
                raise serializers.ValidationError(_("Escolha uma equipe ou um atendente."))
            return attrs

    @extend_schema(
        operation_id="conversations_transfer",
        request=ConversationTransferInput,
        responses={200: ConversationOutput, **ERRORS},
    )
    def post(self, request, pk: int):
        data = self.validated(self.ConversationTransferInput, request.data)
        conversation = self.conversation(pk)
        team = None
        if data.get("team_id"):
            team = Team.objects.filter(pk=data["team_id"]).first()
            if team is None:
                raise ApiError("invalid_input", _("Equipe não encontrada."), 400)
        agent = _user(data["agent_id"], "agent_id") if data.get("agent_id") else None
        services.conversation_transfer(
            conversation=conversation,
            actor=request.user,
            team=team,
            agent=agent,
            note=data.get("note", ""),
        )
        return Response(ConversationOutput(self.fresh(pk)).data)


class ConversationCloseApi(ConsoleApi):
    class ConversationCloseInput(serializers.Serializer):
        resolution = serializers.ChoiceField(
            choices=[
                c
                for c in Conversation.Resolution.choices
                if c[0] != Conversation.Resolution.RESOLVED_BY_BOT
            ]
        )
        note = serializers.CharField(required=False, allow_blank=True, max_length=4000)
        send_csat = serializers.BooleanField(required=False, default=True)

    @extend_schema(
        operation_id="conversations_close",
        request=ConversationCloseInput,
        responses={200: ConversationOutput, **ERRORS},
    )
    def post(self, request, pk: int):
        data = self.validated(self.ConversationCloseInput, request.data)
        conversation = self.conversation(pk)
        services.conversation_close_by_staff(
            conversation=conversation,
            actor=request.user,
            resolution=data["resolution"],
            note=data.get("note", ""),
            send_csat=None if data.get("send_csat", True) else False,
        )
        return Response(ConversationOutput(self.fresh(pk)).data)


class ConversationPriorityApi(ConsoleApi):
    class ConversationPriorityInput(serializers.Serializer):
        priority = serializers.ChoiceField(choices=Conversation.Priority.choices)

    @extend_schema(
        operation_id="conversations_priority",
        request=ConversationPriorityInput,
        responses={200: ConversationOutput, **ERRORS},
    )
    def post(self, request, pk: int):
        data = self.validated(self.ConversationPriorityInput, request.data)
        conversation = self.conversation(pk)
        services.conversation_set_priority(
            conversation=conversation, priority=int(data["priority"]), actor=request.user
        )
        return Response(ConversationOutput(self.fresh(pk)).data)


# --- messages -----------------------------------------------------------------------------------


class MessageListApi(ConsoleApi):
    class MessageListSendInput(serializers.Serializer):
        text = serializers.CharField(required=False, allow_blank=True, max_length=4096)
        reply_to_id = serializers.IntegerField(required=False, min_value=1)
        template_id = serializers.IntegerField(required=False, min_value=1)
        parameters = serializers.ListField(
            child=serializers.CharField(max_length=1024), required=False, max_length=20
        )

        def validate(self, attrs):
            if not attrs.get("template_id") and not (attrs.get("text") or "").strip():
                raise serializers.ValidationError(_("Envie text ou template_id."))
            return attrs

    @extend_schema(
        operation_id="messages_list",
        parameters=[CURSOR, LIMIT],
        responses={200: _page_schema("MessagePage", MessageOutput), **ERRORS},
    )
    def get(self, request, pk: int):
        conversation = self.conversation(pk)
        try:
            rows, next_cursor = selectors.message_list_for_user(
                user=request.user,
                conversation=conversation,
                cursor=request.query_params.get("cursor") or None,
                limit=_limit(request),
            )
        except selectors.InvalidCursor:
            raise ApiError("invalid_cursor", _("Cursor inválido."), 400) from None
        selectors.conversation_shown_to_staff(
            user=request.user,
            conversation=conversation,
            ip=client_ip(request) or None,
            repeat=True,
            action=AccessLogEntry.Action.API_READ,
            object_type="messages",
        )
        return Response(_page(MessageOutput, rows, next_cursor))

    @extend_schema(
        operation_id="messages_send",
        request=MessageListSendInput,
        responses={201: MessageOutput, **ERRORS},
    )
    def post(self, request, pk: int):
        data = self.validated(self.MessageListSendInput, request.data)
        conversation = self.conversation(pk)
        if data.get("template_id"):
            template = next(
                (t for t in hooks.approved_templates() if t.id == data["template_id"]), None
            )
            if template is None:
                raise ApiError("invalid_input", _("Modelo aprovado não encontrado."), 400)
            message = services.message_send_template_by_agent(
                conversation=conversation,
                agent=request.user,
                name=template.name,
                language=template.language,
                body_text=template.body_text,
                parameters=data.get("parameters", []),
            )
        else:
            reply_to = None
            if data.get("reply_to_id"):
                reply_to = conversation.messages.filter(pk=data["reply_to_id"]).first()
                if reply_to is None:
                    raise ApiError(
                        "invalid_input", _("A mensagem citada não é desta conversa."), 400
                    )
            message = services.message_send_by_agent(
                conversation=conversation,
                agent=request.user,
                text=data.get("text", ""),
                reply_to=reply_to,
            )
        return Response(MessageOutput(message).data, status=status.HTTP_201_CREATED)


class NoteOutput(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    author = StaffOutput(allow_null=True)
    created_at = serializers.DateTimeField()


class NoteCreateApi(ConsoleApi):
    class NoteCreateInput(serializers.Serializer):
        text = serializers.CharField(max_length=4000)

    @extend_schema(
        operation_id="notes_create", request=NoteCreateInput, responses={201: NoteOutput, **ERRORS}
    )
    def post(self, request, pk: int):
        data = self.validated(self.NoteCreateInput, request.data)
        conversation = self.conversation(pk)
        note = services.note_add(conversation=conversation, author=request.user, text=data["text"])
        return Response(NoteOutput(note).data, status=status.HTTP_201_CREATED)


# --- customers ----------------------------------------------------------------------------------


class CustomerLookupApi(ConsoleApi):
    class CustomerLookupInput(serializers.Serializer):
        phone = serializers.CharField(required=False, max_length=30)
        protocol = serializers.CharField(required=False, max_length=20)
        cpf = serializers.CharField(required=False, max_length=14)

        def validate(self, attrs):
            if not any(attrs.get(k) for k in ("phone", "protocol", "cpf")):
                raise serializers.ValidationError(_("Informe phone, protocol ou cpf."))
            return attrs

    @extend_schema(
        operation_id="customers_lookup",
        parameters=[CustomerLookupInput],
        responses={
            200: inline_serializer(
                name="CustomerLookup", fields={"results": CustomerOutput(many=True)}
            ),
            **ERRORS,
        },
    )
    def get(self, request):
        data = self.validated(self.CustomerLookupInput, request.query_params)
        rows = selectors.customer_lookup_for_user(
            user=request.user,
            phone=data.get("phone", ""),
            protocol=data.get("protocol", ""),
            cpf=data.get("cpf", ""),
        )
        for customer in rows:
            selectors.customer_shown_to_staff(
                user=request.user,
                customer=customer,
                ip=client_ip(request) or None,
                action=AccessLogEntry.Action.SEARCH,
            )
        return Response({"results": CustomerOutput(rows, many=True).data})


class CustomerDetailOutput(CustomerOutput):
    conversations = serializers.SerializerMethodField()

    def get_conversations(self, obj) -> list[dict[str, Any]]:
        return self.context["conversations"]


class CustomerDetailApi(ConsoleApi):
    @extend_schema(
        operation_id="customers_retrieve",
        responses={
            200: inline_serializer(
                name="CustomerDetail",
                fields={
                    "customer": CustomerOutput(),
                    "conversations": inline_serializer(
                        name="CustomerConversation",
                        fields={
                            "id": serializers.IntegerField(),
                            "protocol": serializers.CharField(),
                            "state": serializers.CharField(),
                            "opened_at": serializers.DateTimeField(),
                            "resolution": serializers.CharField(),
                        },
                        many=True,
                    ),
                },
            ),
            **ERRORS,
        },
    )
    def get(self, request, pk: int):
        try:
            customer = selectors.customer_get_for_user(user=request.user, pk=pk)
        except Customer.DoesNotExist:
            raise ApiError("not_found", _("Cliente não encontrado."), 404) from None
        conversations = (
            selectors.conversations_visible_to(request.user)
            .filter(customer=customer)
            .order_by("-opened_at")
            .values("id", "protocol", "state", "opened_at", "resolution")[:50]
        )
        selectors.customer_shown_to_staff(
            user=request.user, customer=customer, ip=client_ip(request) or None
        )
        return Response(
            {"customer": CustomerOutput(customer).data, "conversations": list(conversations)}
        )


# --- canned responses ---------------------------------------------------------------------------


class CannedResponseListApi(ConsoleApi):
    class CannedResponseListInput(serializers.Serializer):
        conversation = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(
        operation_id="canned_responses_list",
        parameters=[CannedResponseListInput],
        responses={
            200: inline_serializer(
                name="CannedResponses",
                fields={
                    "results": inline_serializer(
                        name="CannedResponse",
                        fields={
                            "id": serializers.IntegerField(),
                            "shortcut": serializers.CharField(),
                            "title": serializers.CharField(),
                            "team_id": serializers.IntegerField(allow_null=True),
                            "body": serializers.CharField(),
                            "rendered": serializers.CharField(allow_null=True),
                        },
                        many=True,
                    )
                },
            ),
            **ERRORS,
        },
    )
    def get(self, request):
        data = self.validated(self.CannedResponseListInput, request.query_params)
        conversation = self.conversation(data["conversation"]) if data.get("conversation") else None
        rows = selectors.canned_responses_for_user(user=request.user, conversation=conversation)
        return Response(
            {
                "results": [
                    {
                        "id": r.pk,
                        "shortcut": r.shortcut,
                        "title": r.title,
                        "team_id": r.team_id,
                        "body": r.body,
                        "rendered": selectors.canned_render(
                            body=r.body, conversation=conversation, agent=request.user
                        )
                        if conversation
                        else None,
                    }
                    for r in rows
                ]
            }
        )


# --- presence -----------------------------------------------------------------------------------


class PresenceOutput(serializers.Serializer):
    presence = serializers.CharField()
    presence_changed_at = serializers.DateTimeField(allow_null=True)


class MyPresenceApi(ConsoleApi):
    class MyPresenceInput(serializers.Serializer):
        presence = serializers.ChoiceField(choices=Presence.choices)

    @extend_schema(operation_id="presence_retrieve", responses={200: PresenceOutput, **ERRORS})
    def get(self, request):
        return Response(PresenceOutput(request.user).data)

    @extend_schema(
        operation_id="presence_update",
        request=MyPresenceInput,
        responses={200: PresenceOutput, **ERRORS},
    )
    def put(self, request):
        data = self.validated(self.MyPresenceInput, request.data)
        services.agent_set_presence(user=request.user, presence=data["presence"])
        return Response(PresenceOutput(request.user).data)


# --- schema: the bearer tokens of accounts.authentication -------------------------------------
try:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ApiTokenScheme(OpenApiAuthenticationExtension):
        target_class = "accounts.authentication.ApiTokenAuthentication"
        name = "apiToken"

        def get_security_definition(self, auto_schema):
            return {
                "type": "http",
                "scheme": "bearer",
                "description": "Authorization: Bearer isp_… (tokens at /accounts/tokens/)",
            }
except ImportError:  # pragma: no cover
    pass
