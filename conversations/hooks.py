"""Hooks a higher layer (the channel app) registers from its ``AppConfig.ready()``.

``conversations`` may not import ``whatsapp``; the console still needs the channel's approved
templates (to offer them outside the 24-hour window) and to send read receipts when an agent
opens a conversation. The whatsapp app registers both here.

Labels: the dashboard counts conversations by intent and by escalation reason, values the bot
and the channel define. They register the pt-BR labels of their values (``register_labels``);
the dashboard shows an unknown value as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApprovedTemplate:
    id: int
    name: str
    language: str
    body_text: str  # with Meta's {{1}} placeholders
    parameter_count: int
    category: str = ""  # Meta's: UTILITY, MARKETING, AUTHENTICATION


TemplateProvider = Callable[[], list[ApprovedTemplate]]
ReadReceiptSender = Callable[[int], None]

_template_provider: TemplateProvider | None = None
_read_receipt_sender: ReadReceiptSender | None = None


def register_template_provider(provider: TemplateProvider | None) -> None:
    global _template_provider
    _template_provider = provider


def register_read_receipt_sender(sender: ReadReceiptSender | None) -> None:
    global _read_receipt_sender
    _read_receipt_sender = sender


def approved_templates() -> list[ApprovedTemplate]:
    """The approved templates the channel can send (empty when no channel is registered)."""
    if _template_provider is None:
        return []
    return list(_template_provider())


def send_read_receipts_on_commit(conversation_id: int) -> None:
    """After commit, ask the channel to mark the customer's messages as read (blue ticks)."""

    def _send() -> None:
        if _read_receipt_sender is None:
            return
        try:
            _read_receipt_sender(conversation_id)
        except Exception:
            logger.exception(
                "hooks: read receipts failed", extra={"conversation_id": conversation_id}
            )

    transaction.on_commit(_send)


_labels: dict[str, dict[str, Any]] = {}


def register_labels(kind: str, labels: Mapping[str, Any]) -> None:
    """Add people's names for values of ``kind`` ("intent", "escalation_reason")."""
    _labels.setdefault(kind, {}).update(labels)


def label(kind: str, value: str) -> str:
    """The registered label of ``value`` (translated now), else the value itself."""
    found = _labels.get(kind, {}).get(value)
    return str(found) if found is not None else value


@dataclass(frozen=True)
class DashboardTile:
    """A tile a higher layer adds to the supervisors' dashboard (e.g. isp's open outages)."""

    key: str
    title: str
    figure: int
    lines: tuple[str, ...] = ()
    link: str = ""
    link_label: str = ""
    attention: bool = False


DashboardTileProvider = Callable[[], "DashboardTile | None"]
_dashboard_tiles: dict[str, DashboardTileProvider] = {}


def register_dashboard_tile(key: str, provider: DashboardTileProvider) -> None:
    """Add a tile to ``/console/dashboard/`` (``provider()`` runs on every render: keep it to
    one or two indexed queries; None hides the tile)."""
    _dashboard_tiles[key] = provider


def dashboard_tiles() -> list[DashboardTile]:
    tiles = []
    for key, provider in _dashboard_tiles.items():
        try:
            tile = provider()
        except Exception:
            logger.exception("hooks: dashboard tile failed", extra={"tile": key})
            continue
        if tile is not None:
            tiles.append(tile)
    return tiles


def labels(kind: str) -> dict[str, str]:
    """Every registered value of ``kind`` with its label (translated now), e.g. the intents
    for the supervisors' filter."""
    return {value: str(found) for value, found in _labels.get(kind, {}).items()}
