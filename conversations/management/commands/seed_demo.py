"""Seed a demo ISP: one user per role, two teams (with opening hours and default SLA targets),
and a few hundred customers with conversations.

Development only: refused when DEBUG is off. Idempotent for users and teams; customers are
added only when the database has none (``--force`` adds another batch).
"""

from __future__ import annotations

import random
from datetime import time, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Presence, Role, SlaTarget, Team, TeamOpeningHours, User
from conversations import services
from conversations.models import Conversation, Customer, Message

DEMO_USERS = [
    # username, role, password, teams
    ("agent", Role.AGENT, "agent-demo-2026", ["suporte"]),
    ("supervisor", Role.SUPERVISOR, "supervisor-demo-2026", ["suporte", "financeiro"]),
    ("admin", Role.ADMIN, "admin-demo-2026", []),
    ("dpo", Role.DPO, "dpo-demo-2026", []),
    ("agent2", Role.AGENT, "agent2-demo-2026", ["financeiro"]),
]

TEAMS = [
    ("suporte", "Suporte técnico", "Sem conexão, lentidão, visitas técnicas."),
    ("financeiro", "Financeiro", "Boletos, segunda via, PIX, negociação e cancelamento."),
]
# Opening hours (São Paulo): weekday → (opens, closes); the SLA targets per priority:
# (first response, resolution) in business minutes.
TEAM_HOURS = {
    "suporte": {**{d: (time(7), time(22)) for d in range(6)}, 6: (time(9), time(18))},
    "financeiro": {**{d: (time(8), time(18)) for d in range(5)}, 5: (time(8), time(12))},
}
SLA_TARGETS = {0: (120, 2880), 1: (30, 1440), 2: (15, 480), 3: (5, 240)}

FIRST_NAMES = [
    "Ana",
    "João",
    "Maria",
    "José",
    "Francisca",
    "Antônio",
    "Adriana",
    "Carlos",
    "Juliana",
    "Paulo",
    "Márcia",
    "Lucas",
    "Fernanda",
    "Rafael",
    "Aline",
    "Bruno",
    "Patrícia",
    "Diego",
    "Camila",
    "Marcos",
    "Letícia",
    "Gabriel",
    "Beatriz",
    "Rodrigo",
    "Sônia",
    "Thiago",
]
LAST_NAMES = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Costa",
    "Ribeiro",
    "Martins",
    "Carvalho",
    "Araújo",
    "Melo",
    "Barbosa",
]
DDDS = ["11", "21", "31", "41", "51", "61", "71", "81", "85", "62", "48", "27"]

# (team slug, priority, customer lines, agent/bot replies)
SCRIPTS: list[tuple[str, int, list[str], list[str]]] = [
    (
        "suporte",
        2,
        ["Boa tarde, estou sem internet desde ontem à noite", "Já desliguei e liguei o roteador"],
        ["Vou verificar o sinal da sua ONU, um momento por favor."],
    ),
    (
        "suporte",
        1,
        ["oi a net ta muito lenta", "contratei 300 mega e no teste dá 20"],
        ["Você está testando pelo cabo ou pelo Wi-Fi?"],
    ),
    (
        "financeiro",
        1,
        ["Preciso da segunda via do boleto deste mês", "pode ser o PIX também"],
        ["Claro! Vou gerar a segunda via para você."],
    ),
    (
        "financeiro",
        1,
        ["Paguei ontem pelo PIX e a internet continua bloqueada", "segue o comprovante"],
        ["Obrigado, vou confirmar o pagamento e liberar a conexão."],
    ),
    (
        "suporte",
        1,
        ["Quero mudar meu plano para o de 500 mega", "quanto fica?"],
        ["Vou te passar as opções disponíveis no seu endereço."],
    ),
    (
        "suporte",
        2,
        ["A luz LOS do aparelho está vermelha piscando", "precisa de técnico?"],
        ["Sim, vou agendar uma visita técnica. Qual o melhor período?"],
    ),
    (
        "financeiro",
        3,
        ["Quero cancelar meu contrato", "já é a terceira vez que fico sem internet este mês"],
        ["Sinto muito pelo transtorno. Vou registrar o seu pedido de cancelamento."],
    ),
    (
        "suporte",
        1,
        ["Quero falar com um atendente", "o robô não resolveu"],
        ["Olá! Sou do suporte, como posso ajudar?"],
    ),
    (
        "suporte",
        1,
        ["O Wi-Fi não chega no quarto dos fundos", "dá pra colocar um repetidor?"],
        ["Temos o plano com roteador mesh, posso te explicar?"],
    ),
    (
        "financeiro",
        1,
        ["Meu boleto veio com valor diferente", "cobraram uma taxa que eu não conheço"],
        ["Vou conferir a sua fatura, um instante."],
    ),
]


# The bot's reading of each script (the dashboard's volume by intent), in SCRIPTS order.
SCRIPT_INTENTS = [
    "no_connection",
    "slow_connection",
    "billing",
    "payment_confirmation",
    "plan_change",
    "technical_visit",
    "cancellation",
    "human",
    "other",
    "billing",
]
# The Anatel kind of demand of each intent (as the bot derives it, bot.policy.REQUEST_KINDS).
SCRIPT_KINDS = {
    "no_connection": "complaint",
    "slow_connection": "complaint",
    "billing": "request",
    "payment_confirmation": "request",
    "plan_change": "information",
    "technical_visit": "request",
    "cancellation": "cancellation",
}
# Why the bot handed a script over, when it did (else one of ESCALATION_REASONS).
SCRIPT_REASONS = {6: "bot:cancellation", 7: "bot:human_requested"}
ESCALATION_REASONS = [
    "bot:human_requested",
    "bot:low_confidence",
    "bot:no_grounded_answer",
    "bot:negative_sentiment",
    "bot:too_many_turns",
]
# Scripts the bot can resolve alone (second copy of the bill, slow connection tips).
BOT_RESOLVABLE = [1, 2, 9]
CSAT_SCORES = [5] * 45 + [4] * 25 + [3] * 12 + [2] * 8 + [1] * 10
CSAT_COMMENTS = [
    "Atendimento rápido, resolveu meu problema.",
    "A atendente foi muito educada, obrigado!",
    "Demorou um pouco para alguém responder.",
    "O robô já mandou a segunda via, ótimo.",
    "Precisei explicar tudo de novo para o atendente.",
    "Excelente, a internet voltou na hora.",
]


class Command(BaseCommand):
    help = "Cria dados de demonstração (usuários por papel, equipes, clientes e conversas)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--customers", type=int, default=300)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--force", action="store_true", help="add customers even if some already exist"
        )

    def handle(self, *args, customers: int, seed: int, force: bool, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo só roda com DEBUG ligado (dados e senhas de demonstração)."
            )
        if customers < 0 or customers > 100_000:
            raise CommandError("--customers deve estar entre 0 e 100000.")
        rng = random.Random(seed)
        with transaction.atomic():
            teams = self._teams()
            created_users = self._users(teams)
        if Customer.objects.exists() and not force:
            self.stdout.write("Clientes já existem: nada a semear (use --force para mais).")
        else:
            self._customers(rng, customers, teams)
            self.stdout.write(self.style.SUCCESS(f"{customers} clientes de demonstração criados."))
        # The demo ERP (isp): contracts for those customers, bills, visit windows and the fixed
        # self-service cases. By name, not import: isp sits above conversations.
        call_command("seed_isp_demo", seed=seed, stdout=self.stdout)
        self._print_logins(created_users)

    def _print_logins(self, created_users: list[str]) -> None:
        """Show the demo logins on every run (``make run`` calls this command).

        Only for demo users whose password is still the demo one: a changed password is never
        printed.
        """
        logins = []
        for username, role, password, _teams in DEMO_USERS:
            user = User.objects.filter(username__iexact=username).first()
            if username in created_users or (user and user.check_password(password)):
                logins.append((username, role, password))
        if not logins:
            return
        self.stdout.write(self.style.WARNING("Logins de demonstração (somente desenvolvimento):"))
        for username, role, password in logins:
            self.stdout.write(f"  {role:<10} {username:<10} senha: {password}")

    def _teams(self) -> dict[str, Team]:
        teams = {}
        for slug, name, description in TEAMS:
            team, created = Team.objects.get_or_create(
                slug=slug, defaults={"name": name, "description": description}
            )
            if created:
                TeamOpeningHours.objects.bulk_create(
                    TeamOpeningHours(team=team, weekday=day, opens_at=opens, closes_at=closes)
                    for day, (opens, closes) in TEAM_HOURS[slug].items()
                )
            teams[slug] = team
        for priority, (first, resolution) in SLA_TARGETS.items():
            SlaTarget.objects.get_or_create(
                team=None,
                priority=priority,
                defaults={"first_response_minutes": first, "resolution_minutes": resolution},
            )
        return teams

    def _users(self, teams: dict[str, Team]) -> list[str]:
        created = []
        for username, role, password, team_slugs in DEMO_USERS:
            if User.objects.filter(username__iexact=username).exists():
                continue
            user = User(
                username=username,
                email=f"{username}@demo.ispsupport.local",
                first_name=username.capitalize(),
                is_staff=True,
                presence=Presence.ONLINE if role == Role.AGENT else Presence.OFFLINE,
            )
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=role))
            user.teams.set([teams[s] for s in team_slugs])
            created.append(username)
        return created

    def _customers(self, rng: random.Random, count: int, teams: dict[str, Team]) -> None:
        agents = {
            slug: list(User.objects.filter(groups__name=Role.AGENT, teams=team))
            for slug, team in teams.items()
        }
        now = timezone.now()
        states = ["bot", "waiting", "assigned", "closed", "closed", "bot_resolved"]
        for i in range(count):
            with transaction.atomic():
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                ddd = rng.choice(DDDS)
                wa_id = f"55{ddd}9{rng.randint(10_000_000, 99_999_999)}"
                customer = services.customer_resolve(wa_id=wa_id, name=name)
                customer.contract_ref = f"CT-{100000 + i}"
                customer.cpf = _fake_cpf(rng)
                customer.save(update_fields=["contract_ref", "cpf"])
                # One earlier, closed contact for some customers (the sidebar's history).
                if rng.random() < 0.3:
                    self._conversation(
                        rng, customer, teams, agents, "closed", now - timedelta(days=40)
                    )
                state = states[i % len(states)]
                # Open ones arrived lately; the others over the day so far (at least the last
                # three hours, so a demo started after midnight still has a shape by hour).
                minutes = rng.randint(5, 90) if state in ("bot", "waiting") else None
                if minutes is None:
                    minutes = rng.randint(15, max(180, _minutes_since_midnight(now)))
                started = now - timedelta(minutes=minutes)
                self._conversation(rng, customer, teams, agents, state, started)

    def _conversation(self, rng, customer, teams, agents, state, started) -> None:
        script = rng.randrange(len(SCRIPTS))
        if state == "bot_resolved":
            script = rng.choice(BOT_RESOLVABLE)
        team_slug, priority, lines, replies = SCRIPTS[script]
        conv = services.conversation_open(customer=customer, opened_at=started)
        t = started
        for line in lines:
            t += timedelta(seconds=rng.randint(5, 90))
            services.message_record_inbound(
                conversation=conv,
                wamid=f"wamid.DEMO{customer.pk}{rng.getrandbits(48):x}",
                type=Message.Type.TEXT,
                text=line,
                timestamp=t,
            )
        services.conversation_record_bot_decision(
            conversation_id=conv.pk,
            data={"action": "demo", "intent": SCRIPT_INTENTS[script]},
            intent=SCRIPT_INTENTS[script],
        )
        if state == "bot":
            return
        if state == "bot_resolved":
            services.conversation_close(
                conversation=conv, resolution=Conversation.Resolution.RESOLVED_BY_BOT
            )
            self._history(rng, conv, closed_at=t + timedelta(seconds=rng.randint(30, 240)))
            return
        reason = SCRIPT_REASONS.get(script) or rng.choice(ESCALATION_REASONS)
        # The bot hands over after the customer's lines: the demo's story is in the past.
        t += timedelta(seconds=rng.randint(10, 60))
        conv = services.conversation_escalate(
            conversation=conv,
            reason=reason,
            team=teams[team_slug],
            priority=priority,
            request_kind=SCRIPT_KINDS.get(SCRIPT_INTENTS[script], ""),
            now=t,
            notify_customer=False,  # demo data: nobody to tell
        )
        if state == "waiting":
            return
        team_agents = agents.get(team_slug) or []
        if not team_agents:
            return
        agent = rng.choice(team_agents)
        conv = services.conversation_assign(conversation=conv, agent=agent, reason="demo")
        for reply in replies:
            t += timedelta(seconds=rng.randint(20, 300))
            msg = Message.objects.create(
                conversation=conv,
                direction=Message.Direction.OUTBOUND,
                sender_kind=Message.SenderKind.AGENT,
                sender_user=agent,
                type=Message.Type.TEXT,
                text=reply,
                status=Message.Status.READ,
                wamid=f"wamid.DEMOOUT{conv.pk}{rng.getrandbits(48):x}",
                sent_at=t,
                delivered_at=t,
                read_at=t,
                created_at=t,
            )
            Conversation.objects.filter(pk=conv.pk, first_response_at__isnull=True).update(
                first_response_at=msg.created_at
            )
        if state == "closed":
            services.conversation_close(
                conversation=conv,
                resolution=Conversation.Resolution.RESOLVED,
                actor=agent,
            )
            self._history(rng, conv, closed_at=t + timedelta(minutes=rng.randint(2, 40)))

    def _history(self, rng, conv: Conversation, *, closed_at) -> None:
        """A closed demo conversation: closed when its story ended (not when seeded), and the
        customer's answer to the satisfaction survey (seven in ten answer, some comment).

        Written directly: going through ``conversations.csat`` would queue real WhatsApp
        messages for a demo that is being seeded."""
        closed_at = min(closed_at, timezone.now())
        updates = {"closed_at": closed_at, "csat_requested_at": closed_at}
        if rng.random() < 0.7:
            answered = closed_at + timedelta(seconds=rng.randint(20, 600))
            updates.update(csat_score=rng.choice(CSAT_SCORES), csat_answered_at=answered)
            if rng.random() < 0.3:
                updates.update(
                    csat_comment=rng.choice(CSAT_COMMENTS),
                    csat_comment_at=answered + timedelta(seconds=rng.randint(20, 120)),
                )
        Conversation.objects.filter(pk=conv.pk).update(**updates)


def _minutes_since_midnight(now) -> int:
    local = timezone.localtime(now)
    return local.hour * 60 + local.minute


def _fake_cpf(rng: random.Random) -> str:
    """A CPF with valid check digits (random, not a real person's)."""
    base = [rng.randint(0, 9) for _ in range(9)]
    for length in (9, 10):
        total = sum(d * w for d, w in zip(base, range(length + 1, 1, -1), strict=False))
        digit = (total * 10) % 11
        base.append(0 if digit == 10 else digit)
    return "".join(map(str, base))
