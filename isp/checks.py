"""System checks for the ERP settings: a misconfigured adapter fails at start, not mid-chat."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from isp.erp import ADAPTERS


def check_erp_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    name = getattr(settings, "ERP_ADAPTER", "demo")
    if name not in ADAPTERS:
        errors.append(
            checks.Error(
                f"ERP_ADAPTER={name!r} is not one of {', '.join(ADAPTERS)}.", id="isp.E001"
            )
        )
    if name == "rest":
        base_url = getattr(settings, "ERP_BASE_URL", "")
        if not base_url or not getattr(settings, "ERP_TOKEN", ""):
            errors.append(
                checks.Error(
                    "ERP_ADAPTER=rest needs ERP_BASE_URL and ERP_TOKEN.",
                    hint="The ERP's API address and the token it issued to ispsupport.",
                    id="isp.E002",
                )
            )
        elif not settings.DEBUG and not base_url.startswith("https://"):
            errors.append(
                checks.Error(
                    "ERP_BASE_URL must be https:// in production (CPFs and bills travel there).",
                    id="isp.E003",
                )
            )
    return errors
