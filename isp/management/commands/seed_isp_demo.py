"""Seed the demo ERP: contracts for the demo customers, bills, visit windows, fixed cases.

``seed_demo`` calls it; run it alone to add what is missing (idempotent). DEBUG only.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from isp.seed import seed_isp_demo


class Command(BaseCommand):
    help = "Cria os dados do ERP de demonstração (contratos, faturas, janelas de visita)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, seed: int, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("seed_isp_demo só roda com DEBUG ligado (dados de demonstração).")
        counts = seed_isp_demo(seed=seed)
        self.stdout.write(
            self.style.SUCCESS(
                f"ERP de demonstração: {counts['contracts']} contratos e "
                f"{counts['windows']} janelas de visita criados."
            )
        )
        self.stdout.write(
            "Autoatendimento no simulador: +55 11 99999-0001 (um contrato), "
            "+55 11 99999-0002 (dois contratos no mesmo número), "
            "CPF 529.982.247-25 (dois contratos, um bloqueado)."
        )
