"""What the two bulk senders share: the outage all-clear and template campaigns.

- **Pacing.** Both hand messages to the outbox at ``CAMPAIGN_SEND_RATE_PER_SECOND`` (default
  half the number's tier), through the project's limiter under one key for all bulk sends, so
  replies to customers who are writing now keep the rest of the tier. Delivery then applies
  Meta's tier and the per-customer pair limit to every message as it does for any reply.
- **Templates.** The channel's approved templates, through the hook the whatsapp app
  registers (``conversations.hooks.approved_templates``): this layer cannot import it.
- **Where a customer's message goes.** Their open conversation, else their latest one (a
  template may be sent on a closed conversation; a free text only inside the 24-hour window).
- **Progress.** A batch returns ``BulkProgress``; the task continues at once (more to do), at
  ``retry_in`` (the limiter's wait) or stops (``done``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from conversations import hooks
from conversations.hooks import ApprovedTemplate
from conversations.models import Conversation
from ispsupport import ratelimit

BULK_LIMITER_KEY = "isp:bulk-send"
_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


@dataclass(frozen=True)
class BulkProgress:
    """One batch: ``sent`` messages queued; ``done`` nothing left; else run again in
    ``retry_in`` seconds (None: at once)."""

    sent: int = 0
    done: bool = True
    retry_in: float | None = None


def bulk_rate() -> int:
    return max(1, int(settings.CAMPAIGN_SEND_RATE_PER_SECOND))


def bulk_slot() -> tuple[bool, float]:
    """Take one slot of the bulk pace: ``(True, 0.0)`` or ``(False, seconds to wait)``.

    A burst of one second's worth, then the steady rate (GCRA, shared by every worker).
    """
    rate = bulk_rate()
    return ratelimit.allow(BULK_LIMITER_KEY, rate, 1.0, burst=rate)


def batch_size() -> int:
    return max(1, int(settings.CAMPAIGN_BATCH_SIZE))


def approved_template(name: str, language: str = "pt_BR") -> ApprovedTemplate | None:
    """The approved template ``name`` in ``language`` (else in any language), or None."""
    rows = [t for t in hooks.approved_templates() if t.name == name]
    return next((t for t in rows if t.language == language), None) or (rows[0] if rows else None)


def template_message(
    template: ApprovedTemplate, parameters: list[str]
) -> tuple[str, dict[str, Any]]:
    """(the text agents read, the outbox payload) for ``template`` with ``parameters``."""
    rendered = _PLACEHOLDER.sub(
        lambda m: (
            parameters[int(m.group(1)) - 1]
            if 0 < int(m.group(1)) <= len(parameters)
            else m.group(0)
        ),
        template.body_text,
    )
    components = []
    if parameters:
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        )
    payload = {
        "template": {
            "name": template.name,
            "language": {"code": template.language},
            "components": components,
        }
    }
    return rendered, payload


def customer_conversation(*, customer_id: int) -> Conversation | None:
    """Where a bulk message to the customer goes: the open conversation, else the latest."""
    rows = Conversation.objects.filter(customer_id=customer_id)
    return (
        rows.exclude(state=Conversation.State.CLOSED).first()
        or rows.order_by("-opened_at", "-pk").first()
    )
