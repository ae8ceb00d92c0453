from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WhatsappConfig(AppConfig):
    name = "whatsapp"
    verbose_name = _("WhatsApp")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversations import outbox
        from ispsupport import health
        from whatsapp import delivery

        outbox.register_dispatcher(_dispatch_outbound)
        # Personal data declared to the compliance registry (export, erasure, retention).
        from whatsapp import privacy

        privacy.register_all()
        # Answers to data-subject requests that chose WhatsApp.
        from compliance import registry
        from whatsapp.answers import send_request_answer

        registry.register_channel_sender("whatsapp", send_request_answer)
        # The console (conversations) lists approved templates and asks for read receipts.
        from conversations import hooks

        hooks.register_template_provider(_approved_templates)
        hooks.register_read_receipt_sender(_send_read_receipts)
        hooks.register_labels(
            "escalation_reason",
            {"stale_message": _("Mensagem antiga reenviada pelo WhatsApp")},
        )
        # Failing while Meta answered 190 (token expired or revoked) recently.
        health.register_check("whatsapp_token", delivery.token_check)
        # Prometheus: the stored events' processing lag, the backlog and token read on scrape.
        from whatsapp import metrics

        metrics.connect()


def _dispatch_outbound(message_id: int) -> None:
    from whatsapp.tasks.outbound import deliver_outbound_message

    deliver_outbound_message.delay(message_id)


def _approved_templates():
    from conversations.hooks import ApprovedTemplate
    from whatsapp.models import MessageTemplate

    rows = MessageTemplate.objects.filter(status=MessageTemplate.Status.APPROVED).order_by(
        "name", "language"
    )
    return [
        ApprovedTemplate(
            id=t.pk,
            name=t.name,
            language=t.language,
            body_text=t.body_text,
            parameter_count=t.parameter_count,
            category=t.category,
        )
        for t in rows
    ]


def _send_read_receipts(conversation_id: int) -> None:
    from whatsapp.tasks.outbound import mark_conversation_read

    mark_conversation_read.delay(conversation_id)
