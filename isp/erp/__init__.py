"""ERP adapters: ``get_adapter()`` returns the one ``ERP_ADAPTER`` names.

``demo`` (default): our own tables, seeded by ``seed_demo``. ``rest``: a real ERP speaking the
JSON API in README, at ``ERP_BASE_URL`` with ``ERP_TOKEN``. ``none``: no ERP: the bot answers
from its knowledge base only. How to add one (IXC Soft, SGP, MK-Auth, Voalle…): README.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from isp.erp.base import ErpAdapter, ErpBadResponse, ErpConflict, ErpError, ErpUnavailable

__all__ = [
    "ErpAdapter",
    "ErpBadResponse",
    "ErpConflict",
    "ErpError",
    "ErpUnavailable",
    "enabled",
    "get_adapter",
]

ADAPTERS = ("demo", "rest", "none")


def enabled() -> bool:
    """Whether an ERP is configured (``ERP_ADAPTER`` other than ``none``)."""
    return getattr(settings, "ERP_ADAPTER", "demo") != "none"


def get_adapter() -> ErpAdapter:
    """The configured adapter (one instance per process and configuration: keeps connections)."""
    return _adapter(
        getattr(settings, "ERP_ADAPTER", "demo"),
        getattr(settings, "ERP_BASE_URL", ""),
        getattr(settings, "ERP_TOKEN", ""),
        float(getattr(settings, "ERP_TIMEOUT_SECONDS", 4.0)),
        float(getattr(settings, "ERP_CONNECT_TIMEOUT_SECONDS", 2.0)),
        int(getattr(settings, "ERP_RETRIES", 2)),
        float(getattr(settings, "ERP_RETRY_BACKOFF_SECONDS", 0.3)),
    )


@functools.cache
def _adapter(
    name: str,
    base_url: str,
    token: str,
    timeout_s: float,
    connect_timeout_s: float,
    retries: int,
    backoff_s: float,
) -> ErpAdapter:
    if name == "rest":
        from isp.erp.rest import RestErpAdapter

        return RestErpAdapter(
            base_url=base_url,
            token=token,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            retries=retries,
            backoff_s=backoff_s,
        )
    if name == "demo":
        from isp.erp.demo import DemoErpAdapter

        return DemoErpAdapter()
    raise ErpUnavailable("not_configured")


@receiver(setting_changed)
def _forget_adapters(*, setting: str, **kwargs) -> None:
    if setting.startswith("ERP_"):
        _adapter.cache_clear()
