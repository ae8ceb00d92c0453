"""Default escalation policy and a starter knowledge base (pt-BR) for a fibre ISP.

No prices, discounts or deadlines: those vary by ISP and must be written by the ISP itself in
admin. Teams are referenced by slug ("suporte", "financeiro"), resolved when the bot escalates;
a slug with no active team sends the conversation to the general queue.
"""

from django.db import migrations

RULES = [
    # reason, team slug ("" = the intent's team), priority (None = the intent's)
    ("human_requested", "", None),
    ("cancellation", "financeiro", 1),
    ("contested", "", 2),
    ("injection", "suporte", 1),
    ("media_needs_human", "", None),
    ("negative_sentiment", "", 2),
    ("low_confidence", "", None),
    ("too_many_turns", "", None),
    ("no_grounded_answer", "", None),
    ("model_unavailable", "", None),
    ("kb_hand_off", "", None),
]

ROUTES = [
    ("no_connection", "suporte", 2),
    ("slow_connection", "suporte", 1),
    ("technical_visit", "suporte", 1),
    ("billing", "financeiro", 1),
    ("payment_confirmation", "financeiro", 1),
    ("plan_change", "financeiro", 1),
    ("cancellation", "financeiro", 1),
    ("human", "suporte", 1),
    ("greeting", "suporte", 1),
    ("other", "suporte", 1),
]

# slug, title, intents, keywords, diagnosis, hand_off, position, answer
ENTRIES = [
    (
        "sem-conexao",
        "Sem conexão: primeiros passos",
        ["no_connection"],
        [],
        "",
        False,
        10,
        "Sinto muito pela falta de conexão. Vamos tentar o básico:\n"
        "1) Confira se a ONU (o aparelho da fibra) está ligada na tomada, com a luz POWER acesa.\n"
        "2) Veja a luz LOS: se estiver vermelha, o sinal da fibra não está chegando e é preciso "
        "um técnico. Nesse caso, responda que não resolveu e eu chamo o suporte.\n"
        "3) Se a LOS estiver apagada, desligue a ONU e o roteador da tomada, aguarde 30 segundos "
        "e ligue de novo: primeiro a ONU, depois o roteador. Espere as luzes estabilizarem.\n"
        "Se puder, mande uma foto das luzes do aparelho.",
    ),
    (
        "cabo-rompido",
        "Cabo ou fibra rompida",
        ["no_connection", "technical_visit"],
        ["rompeu", "rompido", "rompida", "cortad", "arrebent", "cabo caiu", "fio caiu", "poste"],
        "",
        True,
        5,
        "Entendi: parece que o cabo de fibra foi danificado. Por segurança, não mexa no cabo. "
        "Esse reparo precisa de um técnico no local.",
    ),
    (
        "lentidao",
        "Internet lenta ou oscilando",
        ["slow_connection"],
        [],
        "",
        False,
        20,
        "Vamos ver o que pode estar deixando a internet lenta:\n"
        "1) Desligue o roteador da tomada, aguarde 30 segundos e ligue de novo.\n"
        "2) Para medir a velocidade, use um computador ligado por cabo ao roteador: pelo Wi-Fi "
        "a velocidade varia com a distância, paredes e quantidade de aparelhos.\n"
        "3) Se o roteador tiver duas redes, prefira a de 5 GHz perto dele e a de 2,4 GHz em "
        "cômodos mais distantes.\n"
        "4) Confira se algum aparelho está baixando arquivos ou atualizações grandes.",
    ),
    (
        "segunda-via",
        "Segunda via da fatura e código PIX",
        ["billing"],
        [],
        "",
        False,
        30,
        "Você pode emitir a 2ª via do boleto ou copiar o código PIX na Central do Assinante "
        "(site ou aplicativo), no menu Financeiro > Faturas, entrando com o CPF do titular. "
        "Se preferir receber a fatura por aqui, responda que não resolveu e um atendente do "
        "financeiro envia para você.",
    ),
    (
        "contestacao-cobranca",
        "Cobrança que o cliente não reconhece",
        ["billing"],
        [
            "indevid",
            "errad",
            "a mais",
            "duas vezes",
            "cobrado duas",
            "cobraram duas",
            "nao reconhec",
            "aumentou",
            "subiu",
            "estorno",
            "reembolso",
        ],
        "",
        True,
        25,
        "Entendi que você quer contestar um valor da sua fatura. Essa análise é feita pela "
        "equipe do financeiro, que vai conferir a cobrança com você.",
    ),
    (
        "pagamento-realizado",
        "Pagamento feito: compensação e liberação",
        ["payment_confirmation"],
        [],
        "",
        False,
        40,
        "Obrigado pelo pagamento! Pagamentos por PIX costumam ser reconhecidos rapidamente; "
        "boletos dependem da compensação bancária, que pode levar alguns dias úteis. Se a "
        "conexão foi suspensa por falta de pagamento, ela é liberada automaticamente depois "
        "da compensação. Se precisar de ajuda com a liberação, responda que não resolveu e um "
        "atendente do financeiro confere o comprovante.",
    ),
    (
        "pagamento-bloqueio",
        "Pagou e a conexão continua bloqueada",
        ["payment_confirmation"],
        ["bloquead", "suspens", "cortaram", "cortada", "continua sem", "ainda sem", "nao liberou"],
        "",
        True,
        35,
        "Entendi: você já pagou e a conexão continua bloqueada. Um atendente do financeiro vai "
        "conferir o pagamento e fazer a liberação.",
    ),
    (
        "mudanca-plano",
        "Mudança de plano",
        ["plan_change"],
        [],
        "",
        False,
        50,
        "Os planos disponíveis para o seu endereço, com velocidades e valores atualizados, "
        "estão na Central do Assinante (site ou aplicativo), no menu Meu plano. A mudança "
        "pode ser pedida por lá mesmo. Se preferir a ajuda de um consultor, responda que não "
        "resolveu e eu chamo um atendente.",
    ),
    (
        "visita-tecnica",
        "Visita técnica",
        ["technical_visit"],
        [],
        "",
        True,
        60,
        "Certo! A visita técnica é agendada pela nossa equipe, que vai combinar com você o "
        "melhor dia e horário por aqui mesmo.",
    ),
    (
        "dados-pessoais",
        "Pedidos sobre dados pessoais (LGPD)",
        ["other"],
        ["lgpd", "dados pessoais", "meus dados", "privacidade", "apagar meus", "excluir meus"],
        "",
        True,
        80,
        "Pedidos sobre seus dados pessoais (confirmação, acesso, correção, portabilidade ou "
        "exclusão) são atendidos pela nossa equipe com o Encarregado de dados. Vou encaminhar "
        "seu pedido.",
    ),
    (
        "reclamacao-atendimento",
        "Reclamação sobre o atendimento",
        ["other"],
        ["mal educad", "grosseir", "falta de respeito", "desrespeit", "reclamacao", "reclamar"],
        "",
        True,
        81,
        "Sinto muito pela experiência. Vou encaminhar sua reclamação a um atendente, que vai "
        "registrá-la e acompanhar o caso com você.",
    ),
    (
        "foto-los-vermelha",
        "Foto: luz LOS vermelha",
        ["no_connection"],
        [],
        "los_red",
        True,
        70,
        "Pela foto, a luz LOS do seu aparelho está vermelha: isso indica que o sinal da fibra "
        "não está chegando até a sua casa. Reiniciar o aparelho não resolve nesse caso; é "
        "preciso uma visita técnica.",
    ),
    (
        "foto-pon-piscando",
        "Foto: luz PON piscando",
        ["no_connection"],
        [],
        "pon_blinking",
        False,
        71,
        "Pela foto, a luz PON está piscando: o aparelho está tentando se conectar à rede. "
        "Aguarde alguns minutos. Se continuar piscando, desligue a ONU da tomada, aguarde 30 "
        "segundos e ligue de novo. Confira também se o cabo de fibra (o fino, geralmente verde "
        "ou azul na ponta) está bem encaixado, sem dobras.",
    ),
    (
        "foto-sem-energia",
        "Foto: aparelho apagado",
        ["no_connection"],
        [],
        "no_power",
        False,
        72,
        "Pela foto, o aparelho parece estar desligado. Confira se a fonte está bem encaixada "
        "no aparelho e na tomada, e teste a tomada com outro equipamento. Se houver um botão "
        "ON/OFF atrás do aparelho, verifique se está ligado.",
    ),
    (
        "foto-luzes-normais",
        "Foto: luzes normais",
        ["no_connection", "slow_connection"],
        [],
        "all_normal",
        False,
        73,
        "Pela foto, as luzes do aparelho da fibra estão normais, então o sinal está chegando. "
        "O problema pode estar no roteador Wi-Fi: desligue o roteador da tomada, aguarde 30 "
        "segundos e ligue de novo. Se estiver usando Wi-Fi, teste perto do roteador.",
    ),
]


def seed(apps, schema_editor):
    BotPolicy = apps.get_model("bot", "BotPolicy")
    EscalationRule = apps.get_model("bot", "EscalationRule")
    IntentRoute = apps.get_model("bot", "IntentRoute")
    KnowledgeEntry = apps.get_model("bot", "KnowledgeEntry")

    policy, _ = BotPolicy.objects.get_or_create(pk=1)
    for reason, team_slug, priority in RULES:
        EscalationRule.objects.get_or_create(
            policy=policy,
            reason=reason,
            defaults={"team_slug": team_slug, "priority": priority, "enabled": True},
        )
    for intent, team_slug, priority in ROUTES:
        IntentRoute.objects.get_or_create(
            policy=policy, intent=intent, defaults={"team_slug": team_slug, "priority": priority}
        )
    for slug, title, intents, keywords, diagnosis, hand_off, position, answer in ENTRIES:
        KnowledgeEntry.objects.get_or_create(
            slug=slug,
            defaults={
                "title": title,
                "intents": intents,
                "keywords": keywords,
                "diagnosis": diagnosis,
                "hand_off": hand_off,
                "position": position,
                "answer": answer,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("bot", "KnowledgeEntry").objects.filter(
        slug__in=[entry[0] for entry in ENTRIES]
    ).delete()
    apps.get_model("bot", "BotPolicy").objects.filter(pk=1).delete()


class Migration(migrations.Migration):
    dependencies = [("bot", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
