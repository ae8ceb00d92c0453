"""Rule-based pt-BR intent and sentiment classifier for ISP support messages.

This is the fallback the bot relies on when the LLM is unavailable, and a second opinion when it is
not. It is pure Python (no Django) and deterministic, so its figures on the labelled evaluation set
in ``bot/evaluation/`` are reproducible.

Contract of :func:`classify`:

* it never raises for any ``str`` input (empty, emoji-only, very long);
* ``intent`` is one of :data:`INTENTS`; ``cancellation`` and ``human`` take priority over every
  other intent as soon as their evidence is strong enough, because missing either one breaks the
  customer's legal right to reach a person (Anatel SAC rules) and costs the ISP a retention chance;
* ``sentiment`` is ``negative``, ``neutral`` or ``positive``, ``sentiment_score`` is in [-1, 1];
* ``confidence`` is in [0, 1] and grows with the margin between the winning and runner-up scores;
* ``matched`` holds only rule identifiers from this module, never customer text, so it may be
  logged and stored without leaking personal data.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["INTENTS", "Classification", "classify", "normalize"]

INTENTS: tuple[str, ...] = (
    "no_connection",
    "slow_connection",
    "billing",
    "payment_confirmation",
    "plan_change",
    "technical_visit",
    "cancellation",
    "human",
    "greeting",
    "other",
)

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

# A priority intent wins outright once its score reaches this; one explicit keyword is enough.
_PRIORITY_THRESHOLD = 2.5
# Below this best score the message says nothing we recognise, so it is "other".
_MIN_SCORE = 1.0
# Upper bound of the greeting score, equal to one weak keyword of any other intent.
_GREETING_CAP = 1.5
# Ties between ordinary intents resolve in this order: the ones that need action come first.
_TIE_ORDER: tuple[str, ...] = (
    "cancellation",
    "human",
    "no_connection",
    "technical_visit",
    "payment_confirmation",
    "billing",
    "slow_connection",
    "plan_change",
    "other",
    "greeting",
)


@dataclass(frozen=True)
class Classification:
    """Result of :func:`classify`; see the module docstring for the value ranges."""

    intent: str
    sentiment: str
    sentiment_score: float
    confidence: float
    matched: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_NEGATIVE_EMOJI = "😡🤬😠😤😭😢😞😩😫😒👎💢🙄😣😖☹🖕"
_POSITIVE_EMOJI = "🙏😊😀😁😃😄🙂👍❤💙💚🥰😍👏🤩😉✅"

# Phrase-level rewrites applied to the accent-free, lower-cased text before tokenising. They run
# before digits are folded, because "2 via" must become "segunda via" while the 2 is still there.
_PHRASE_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\bwi\s*-?\s*fi\b|\bwify\b|\bwaifai\b", " wifi "),
        (r"\b(?:2|seg)\s*(?:a|o|\.)?\s*-?\s*via\b", " segunda via "),
        (r"\bc/", " com "),
        (r"\bp/", " para "),
        (r"\bs/", " sem "),
        (r"cansel", "cancel"),
        (r"\bcancelameto\b|\bcancelamneto\b", "cancelamento"),
    )
)

# Token-level WhatsApp spellings and slang. Values may be several words.
_SLANG: dict[str, str] = {
    "vc": "voce",
    "vcs": "voces",
    "q": "que",
    "pq": "porque",
    "pqe": "porque",
    "n": "nao",
    "naum": "nao",
    "nn": "nao",
    "tb": "tambem",
    "tbm": "tambem",
    "net": "internet",
    "internete": "internet",
    "bolto": "boleto",
    "boletu": "boleto",
    "bolerto": "boleto",
    "atendent": "atendente",
    "atendende": "atendente",
    "ta": "esta",
    "to": "estou",
    "tou": "estou",
    "dms": "demais",
    "dmais": "demais",
    "pfv": "por favor",
    "pfvr": "por favor",
    "pf": "por favor",
    "plz": "por favor",
    "qto": "quanto",
    "qnto": "quanto",
    "hj": "hoje",
    "agr": "agora",
    "mt": "muito",
    "mto": "muito",
    "obg": "obrigado",
    "obgd": "obrigado",
    "brigado": "obrigado",
    "vlw": "valeu",
    "blz": "beleza",
    "msm": "mesmo",
    "td": "tudo",
    "ngm": "ninguem",
    "nd": "nada",
    "qdo": "quando",
    "qnd": "quando",
    "c": "com",
    "eh": "e",
    "robozinho": "robo",
    "robot": "robo",
    "bot": "robo",
    "mb": "mega",
    "mbps": "mega",
    "megas": "mega",
    "gb": "giga",
    "gbps": "giga",
    "vdd": "verdade",
}

_DIGITS = re.compile(r"\d+")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)")
_TRIPLE_LETTER = re.compile(r"([a-z])\1{2,}")
# Doubled letters other than r, s, e and o never occur in modern Portuguese spelling ("carro",
# "passa", "leem", "voo"), so a doubled one is emphasis ("oii", "lentaa") and can be collapsed.
_DOUBLE_LETTER = re.compile(r"([a-df-np-qt-z])\1")
_NON_WORD = re.compile(r"[^a-z0-9#]+")


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize(text: str) -> str:
    """Return ``text`` as space-separated, accent-free, lower-case canonical tokens.

    Emojis and punctuation are dropped (read them from the raw text), digit runs become ``#``,
    emphasis letters are collapsed and common WhatsApp spellings are replaced by standard words.
    The result starts and ends with a space so patterns can anchor on `` word ``.
    """
    lowered = _strip_accents(text.lower())
    for pattern, replacement in _PHRASE_REWRITES:
        lowered = pattern.sub(replacement, lowered)
    lowered = _DIGIT_LETTER.sub(" ", lowered)
    lowered = _DIGITS.sub("#", lowered)
    lowered = _NON_WORD.sub(" ", lowered)
    lowered = _TRIPLE_LETTER.sub(r"\1", lowered)
    lowered = _DOUBLE_LETTER.sub(r"\1", lowered)
    tokens = [_SLANG.get(token, token) for token in lowered.split()]
    return " " + " ".join(tokens) + " "


# --------------------------------------------------------------------------------------------
# Intent rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """One weighted pattern; ``negatable`` rules are ignored right after a negation."""

    id: str
    intent: str
    pattern: re.Pattern[str]
    weight: float
    negatable: bool = False
    # Rule ids whose hits this rule cancels: a complaint about a technician mentions "tecnico"
    # without asking for a visit.
    vetoes: tuple[str, ...] = ()


def _rule(
    intent: str,
    name: str,
    pattern: str,
    weight: float,
    *,
    negatable: bool = False,
    vetoes: tuple[str, ...] = (),
) -> _Rule:
    return _Rule(
        id=f"{intent}.{name}",
        intent=intent,
        pattern=re.compile(pattern),
        weight=weight,
        negatable=negatable,
        vetoes=vetoes,
    )


# Negation immediately before a negatable match: "nao quero cancelar", "nao vou mais cancelar".
# Only auxiliary words may sit in between, so "se nao resolver vou cancelar" stays a threat.
_NEGATION_BEFORE = re.compile(
    r"\b(?:nao|nunca|jamais|nem)\s+"
    r"(?:(?:quero|vou|vai|pretendo|desejo|queria|quis|penso|pensando|pensei|em|pra|para|o|a|"
    r"meu|minha|mais|e|precisa|preciso|ia|iria|estou|sou|de|fazer|mesmo)\s+){0,3}$"
)

_W = r"(?:\w+ ){0,3}"  # up to three filler words between two parts of a phrase
_SPEED = r"(?:# ?(?:mega|giga|k)|# (?:de )?(?:mega|giga))"

_RULES: tuple[_Rule, ...] = (
    # --- cancellation: must never be missed, so the net is wide ------------------------------
    _rule(
        "cancellation",
        "cancel",
        # Cancelling a visit or the automatic debit is not leaving the ISP.
        r"\bcancel\w*\b(?! (?:(?:a|o|essa|esse|minha|meu) )?(?:visita|agendamento|debito automatico))",
        3.5,
        negatable=True,
    ),
    _rule("cancellation", "rescind", r"\brescin\w*|\brescisao\b|\bdistrato\b", 3.5, negatable=True),
    _rule(
        "cancellation",
        "end_contract",
        r"\b(?:encerr|finaliz|termin)\w* " + _W + r"(?:contrato|conta|servico|plano|assinatura)",
        3.0,
        negatable=True,
    ),
    _rule(
        "cancellation",
        "give_up",
        r"\bdesist\w* (?:d[aoe] )?(?:servico|plano|internet|contrato|voces)",
        3.0,
        negatable=True,
    ),
    _rule(
        "cancellation",
        "not_anymore",
        r"\bnao (?:quero|preciso|vou querer|desejo) mais (?:\w+ ){0,2}"
        r"(?:internet|servico|plano|voces|contrato|empresa|provedor)",
        3.0,
    ),
    _rule(
        "cancellation",
        "switch_provider",
        r"\b(?:trocar|mudar|mudando|trocando|ir|indo|vou|passar|migrar)\w* (?:de |pra |para |pro |"
        r"a )?(?:outr[ao] )?(?:operadora|provedor|empresa)\b",
        3.0,
    ),
    _rule(
        "cancellation",
        "competitor",
        r"\b(?:pra|para|pro|na|a) (?:vivo|claro|tim|oi fibra|sky|brisanet|desktop|algar|giga mais)\b",
        2.5,
    ),
    _rule(
        "cancellation", "leave", r"\bsair (?:da|dessa|desta) (?:operadora|empresa|internet)", 3.0
    ),
    _rule(
        "cancellation",
        "port_out",
        r"\bport(?:ar|abilidade)\b|\bdeslig\w* (?:da|dessa|desta|do|desse) "
        r"(?:operadora|empresa|provedor|servico)|\bnao quero (?:mais )?ser cliente"
        r"|\bbaixa (?:na|no|da|do) (?:minha |meu )?(?:assinatura|contrato|plano)\b",
        3.0,
    ),
    # --- human: explicit requests for a person ------------------------------------------------
    _rule("human", "attendant", r"\batendente\w*", 3.5),
    _rule("human", "human_word", r"\bhuman[oa]s?\b", 3.5),
    _rule("human", "real_person", r"\b(?:pessoa|alguem|gente) (?:de verdade|real|de carne)", 3.5),
    _rule(
        "human",
        "talk_to",
        r"\bfalar com (?!o robo)(?:\w+ ){0,3}"
        r"(?:alguem|pessoa|gerente|supervisor\w*|responsavel|suporte|setor|financeiro|comercial|"
        r"gente|voce|voces|humano|atendente|ouvidoria|tecnico|um|uma)\b",
        3.5,
    ),
    _rule("human", "talk_with_anyone", r"\bfalar com\b", 2.0),
    _rule("human", "robot", r"\brobo\w*|\bmaquina\b|\bautomatic[oa] demais", 3.0),
    _rule("human", "call_me", r"\b(?:me )?lig(?:a|ue|ar|em) (?:pra|para) mim\b|\bme lig\w*", 3.0),
    _rule("human", "can_call", r"\b(?:pode|podem|poderia) (?:me )?ligar\b", 3.0),
    _rule(
        "human",
        "transfer",
        r"\b(?:me )?transfer(?:e|ir|ia|a)\b(?! (?:a|o|minha|meu) (?:internet|endereco|ponto|servico|"
        r"instalacao|titularidade))",
        3.0,
    ),
    _rule("human", "manager", r"\bgerente\b|\bsupervisor\w*|\bouvidoria\b", 3.0),
    _rule("human", "anyone_there", r"\btem (?:alguem|gente|uma pessoa) (?:ai|aqui|ae)\b", 3.0),
    _rule(
        "human",
        "put_me_with",
        r"\b(?:me )?(?:coloca|passa|passe|bota)\w* (?:com|pra|para|pro) "
        r"(?:alguem|um|uma|o|a) ?",
        2.5,
    ),
    _rule(
        "human",
        "attended_by",
        r"\batendid[oa] por (?:uma |um )?(?:pessoa|alguem|humano|gente)\b|\bme atend(?:e|a|am)\b",
        3.0,
    ),
    _rule("human", "want_people", r"\bquero (?:gente|pessoa|alguem)\b", 3.0),
    _rule("human", "regulator", r"\bprocon\b|\banatel\b|\breclame aqui\b", 1.5),
    # --- no_connection -------------------------------------------------------------------------
    _rule(
        "no_connection",
        "without",
        r"\bsem (?:a |o |nenhum |nenhuma )?(?:internet|conexao|sinal|acesso|rede|wifi)\b",
        3.5,
    ),
    _rule(
        "no_connection",
        "dont_have",
        r"\bnao (?:tenho|temos|tem|ha|estou com) (?:\w+ )?(?:internet|conexao|sinal|acesso)\b",
        3.5,
    ),
    _rule("no_connection", "fell", r"\bcaiu\b|\bcairam\b", 2.5),
    _rule("no_connection", "stopped", r"\bparou\b|\bpararam\b", 2.0),
    _rule(
        "no_connection",
        "not_working",
        r"\bnao (?:esta |estao )?(?:funciona|funcionando|conecta|conectando|navega|navegando|pega|"
        r"pegando|volta|voltou|liga|abre|carrega|acessa|entra)\b(?! direito| bem| muito bem)",
        3.0,
    ),
    _rule(
        "no_connection", "cant_access", r"\bnao consigo (?:acessar|conectar|entrar|navegar)", 3.0
    ),
    _rule("no_connection", "off_air", r"\bfora do ar\b|\bfora\b|\bof+(?:line)?\b", 2.5),
    _rule("no_connection", "los_light", r"\blos\b|\bpon\b|\bluz\w* (?:\w+ ){0,2}vermelh\w*", 3.5),
    _rule("no_connection", "red_light", r"\bvermelh[oa]\b|\bapagad[oa]\b|\bnenhuma luz\b", 2.5),
    _rule("no_connection", "vanished", r"\bsumiu\b|\bdesaparec\w*", 2.5),
    _rule(
        "no_connection", "outage", r"\bqueda\b|\bcade (?:a |minha )?internet\b|\bnada carrega", 3.0
    ),
    _rule("no_connection", "whole_area", r"\bcaiu geral\b|\bbairro todo\b|\bregiao\b", 1.5),
    # --- slow_connection -----------------------------------------------------------------------
    _rule("slow_connection", "slow", r"\blent[oa]s?\b|\blentidao\b|\blerd\w*|\bdevagar\b", 3.5),
    _rule("slow_connection", "freezing", r"\btrav\w*", 2.5),
    _rule("slow_connection", "unstable", r"\boscil\w*|\binstab\w*|\binstave\w*", 3.5),
    _rule(
        "slow_connection",
        "drops_and_returns",
        r"\b(?:cai|caindo|cair) (?:\w+ ){0,2}(?:volta|voltando)\b|\bcaindo toda hora\b",
        4.0,
    ),
    _rule("slow_connection", "latency", r"\bping\b|\blag\w*|\blatencia\b|\bperda de pacote", 3.0),
    _rule("slow_connection", "weak", r"\bfrac[oa]\b|\bnao pega direito\b|\bnao chega\b", 2.5),
    _rule(
        "slow_connection",
        "speed_gap",
        r"\b(?:chega|chegando|recebo|recebendo|deu|dando|baixando|vem|vindo)\b (?:\w+ )?"
        r"# ?(?:mega|giga|k)?\b",
        3.0,
    ),
    _rule(
        "slow_connection",
        "speed",
        r"\bvelocidade\b(?! (?:maior|mais alta))|\bspeedtest\b|\bteste de velocidade\b",
        2.0,
        negatable=True,
    ),
    _rule(
        "slow_connection",
        "paid_for_more",
        r"\b(?:contratei|contratado|pago|assinei|tenho|plano (?:e )?de) (?:por |de )?"
        + _SPEED
        + r".*\b(?:chega|chegando|recebo|recebendo|vem|vindo|deu|da|so|nao bate|metade)\b",
        3.5,
    ),
    _rule("slow_connection", "loading", r"\bcarregando\b|\bdemor\w*", 2.0),
    _rule("slow_connection", "transfer_rates", r"\bdownload\b|\bupload\b", 1.5),
    _rule("slow_connection", "junk", r"\bcarroca\b|\btartaruga\b|\bhorrivel de\b", 2.0),
    _rule("slow_connection", "bad", r"\bruim\b", 1.0),
    # --- billing -------------------------------------------------------------------------------
    _rule("billing", "boleto", r"\bboleto\w*", 3.0),
    _rule("billing", "second_copy", r"\bsegunda via\b", 4.0),
    _rule("billing", "invoice", r"\bfatura\w*|\bmensalidade\b|\bnota fiscal\b|\bnf\b", 3.0),
    _rule("billing", "bill", r"\bconta\b", 1.5),
    _rule("billing", "charge", r"\bcobr\w*", 2.5),
    _rule("billing", "due", r"\bvenc\w*|\bjuros\b|\bmulta\b|\batrasad[oa]\b|\bem aberto\b", 2.0),
    _rule("billing", "barcode", r"\bcodigo de barras\b|\blinha digitavel\b", 3.5),
    _rule("billing", "pix", r"\bchave pix\b|\bpagar (?:com|por|no|via) pix\b", 2.5),
    _rule("billing", "amount", r"\bvalor\b|\bquanto (?:eu )?devo\b|\bdevo\b|\bdivida\b", 2.0),
    _rule("billing", "installments", r"\bparcel\w*|\bdebito automatico\b|\bdesconto\b", 2.0),
    _rule("billing", "how_to_pay", r"\bcomo (?:eu )?pag\w*|\bpra (?:eu )?pagar\b", 2.0),
    _rule("billing", "non_payment", r"\bfalta de pagamento\b|\bbloquead[oa]\b", 1.5),
    _rule("billing", "price_rise", r"\b(?:mais )?car[oa]\b|\baument(?:ou|aram)\b|\bsubiu\b", 1.5),
    # --- payment_confirmation ------------------------------------------------------------------
    _rule("payment_confirmation", "paid", r"\bpaguei\b|\bquitei\b|\besta pago\b|\bja pago\b", 4.5),
    _rule("payment_confirmation", "receipt", r"\bcomprovante\w*", 4.0),
    _rule(
        "payment_confirmation",
        "payment_done",
        r"\b(?:fiz|efetuei|realizei|fez|acabei de fazer|mandei) (?:o |a )?"
        r"(?:pagamento|pix|transferencia|deposito)\b"
        r"|\bpagamento (?:\w+ ){0,2}(?:feito|realizado|efetuado|caiu|compensou)\b"
        r"|\bacabei de pagar\b",
        4.0,
    ),
    _rule(
        "payment_confirmation",
        "check_payment",
        r"\b(?:receberam|identificaram|confirm\w*|baixa)\b (?:\w+ ){0,2}pagamento\b"
        r"|\bdar baixa\b",
        3.0,
    ),
    _rule("payment_confirmation", "transfer", r"\btransferencia\b|\bdeposito\b", 2.0),
    _rule(
        "payment_confirmation",
        "unlock",
        r"\bliber\w*|\brelig\w*|\bdesbloque\w*|\bainda (?:\w+ )?bloquead\w*",
        1.5,
    ),
    # --- plan_change ---------------------------------------------------------------------------
    _rule(
        "plan_change",
        "change_plan",
        r"\b(?:mudar|muda|trocar|troca|alterar|migrar|passar|aumentar|diminuir|baixar|reduzir|"
        r"melhorar|subir)\b (?:\w+ ){0,2}(?:plano|velocidade)\b",
        4.0,
        negatable=True,
    ),
    _rule("plan_change", "grade", r"\bupgrade\b|\bdowngrade\b", 4.0),
    _rule(
        "plan_change",
        "which_plans",
        r"\bplanos\b|\bplano (?:de |com |mais |maior|melhor|novo|so )",
        3.0,
    ),
    _rule("plan_change", "plan", r"\bplano\b", 1.0),
    _rule("plan_change", "price_of_plan", r"\bquanto (?:custa|esta|e|sai) (?:o |um )?plano", 2.0),
    _rule("plan_change", "want_speed", r"\b(?:pra|para|quero|de) " + _SPEED, 2.0),
    _rule("plan_change", "hire", r"\bcontratar\b|\bcombo\b|\bpromoca\w*|\bstreaming\b", 2.5),
    _rule(
        "plan_change", "faster", r"\bmais rapid[oa]\b|\bmais velocidade\b|\bmaior velocidade", 2.5
    ),
    _rule("plan_change", "business", r"\bempresarial\b|\bpra empresa\b", 1.5),
    # --- technical_visit -----------------------------------------------------------------------
    _rule("technical_visit", "technician", r"\btecnico\w*", 3.5),
    _rule("technical_visit", "visit", r"\bvisita\w*", 3.5, negatable=True),
    _rule("technical_visit", "schedule", r"\bagend\w*|\bremarc\w*|\breagend\w*", 3.0),
    _rule("technical_visit", "install", r"\binstal\w*", 3.0),
    _rule(
        "technical_visit",
        "broken_line",
        r"\b(?:cabo|fio|fibra|caixinha|caixa|cto)\b (?:\w+ ){0,3}"
        r"(?:caiu|solto|rompid\w*|romp\w*|cortad\w*|partid\w*|arrebent\w*|quebr\w*|estourad\w*)"
        r"|\bposte\b",
        3.5,
    ),
    _rule(
        "technical_visit",
        "swap_device",
        r"\b(?:troc\w*|substitu\w*|mudar)\b (?:\w+ ){0,2}(?:roteador|modem|onu|equipamento|aparelho)",
        3.5,
    ),
    _rule("technical_visit", "burnt", r"\bqueim\w*|\bquebr\w*", 3.0),
    _rule(
        "technical_visit",
        "moving",
        r"\bmud\w* de endereco\b|\bnovo endereco\b|\btransferir (?:a internet|o ponto|o servico)"
        r"|\blevar a internet\b",
        3.5,
    ),
    _rule("technical_visit", "point", r"\bponto\b", 2.0),
    _rule(
        "technical_visit",
        "send_someone",
        r"\b(?:mandar|manda|mandem|enviar|envia|vir|venha|venham)\b (?:\w+ ){0,2}alguem\b",
        3.0,
    ),
    # --- greeting ------------------------------------------------------------------------------
    _rule(
        "greeting",
        "hello",
        r"\b(?:oi|oie|ola|alo|opa|eai|eae|ei|hey|hello|hi|salve|fala)\b",
        1.5,
    ),
    _rule("greeting", "time_of_day", r"\bbo[am] (?:dia|tarde|noite)\b", 1.5),
    _rule("greeting", "how_are_you", r"\btudo (?:bem|bom|certo)\b ?$|\bcomo vai\b", 1.0),
    # --- other: things the bot can answer or simply acknowledge -------------------------------
    _rule(
        "other",
        "conduct_complaint",
        r"\bgrosseir\w*|\bmal educad\w*|\bsem educacao\b|\bdesrespeit\w*|\bestupid[oa]\b",
        6.0,
        vetoes=("human.attendant", "technical_visit.technician"),
    ),
    _rule("other", "thanks", r"\bobrigad\w*|\bvaleu\b|\bagradec\w*", 2.0),
    _rule(
        "other",
        "ack",
        r"^ (?:ok|okay|beleza|show|entendi|certo|tudo certo|aguardo|blz|k|top) ",
        2.0,
    ),
    _rule("other", "resolved", r"\bresolveu\b|\bvoltou\b|\bfuncionou\b", 2.0, negatable=True),
    _rule("other", "store", r"\bloja\b|\bhorario\b|\bsite\b|\baplicativo\b|\bendereco da\b", 2.0),
    _rule("other", "coverage", r"\batendem (?:em|no|na)\b|\bcobertura\b|\bfibra optica\b", 2.5),
    _rule(
        "other",
        "privacy",
        r"\blgpd\b|\bdados pessoais\b|\bmeus dados\b|\bdados (?:\w+ ){0,2}(?:de mim|guardam)",
        4.0,
    ),
    _rule("other", "jobs", r"\bemprego\b|\bvaga\b|\bcurriculo\b", 3.0),
    _rule("other", "wifi_settings", r"\bsenha do wifi\b|\bnome da rede\b|\bsenha da rede\b", 3.0),
    _rule("other", "protocol", r"\bprotocolo\b|\bcnpj\b", 2.0),
)

# --------------------------------------------------------------------------------------------
# Sentiment lexicon
# --------------------------------------------------------------------------------------------

_NEGATIVE_WORDS = re.compile(
    r"\b(?:ruim|horrivel|pessim\w*|absurd\w*|merda|porcaria|lixo|raiva|odeio|cansei|cansad\w*|"
    r"palhacada|vergonha|descaso|inutil|ridicul\w*|droga|porra|caralho|saco|pqp|inferno|"
    r"revoltad\w*|indignad\w*|irritad\w*|decepcion\w*|nojo|bosta|sacanagem|roubo|ladr\w*|"
    r"procon|anatel|ninguem resolve|nunca resolve|toda hora|de novo|ja expliquei|mil vezes|"
    r"urgente|pelo amor de deus|carroca)\b"
)
_POSITIVE_WORDS = re.compile(
    r"\b(?:obrigad\w*|valeu|otim\w*|excelente|perfeit\w*|maravilh\w*|parabens|adorei|amei|top|"
    r"show|resolveu|funcionou|voltou|agradec\w*|gentil|legal|bom atendimento|beleza)\b"
)
_NEGATED_POSITIVE = re.compile(r"\bnao (?:\w+ )?(?:resolveu|funcionou|voltou|e bom|esta bom)\b")


def _sentiment(raw: str, normalized: str) -> tuple[str, float, list[str]]:
    matched: list[str] = []
    score = 0.0
    negative_emoji = sum(raw.count(ch) for ch in _NEGATIVE_EMOJI)
    positive_emoji = sum(raw.count(ch) for ch in _POSITIVE_EMOJI)
    if negative_emoji:
        matched.append("sentiment.emoji_negative")
        score -= 1.5 + 0.25 * min(negative_emoji - 1, 4)
    if positive_emoji:
        matched.append("sentiment.emoji_positive")
        score += 1.0 + 0.25 * min(positive_emoji - 1, 4)
    negatives = len(_NEGATIVE_WORDS.findall(normalized))
    negated_positives = len(_NEGATED_POSITIVE.findall(normalized))
    positives = len(_POSITIVE_WORDS.findall(normalized)) - negated_positives
    if negatives or negated_positives:
        matched.append("sentiment.words_negative")
        score -= 1.0 * negatives + 1.0 * negated_positives
    if positives > 0:
        matched.append("sentiment.words_positive")
        score += 1.0 * positives
    letters = [ch for ch in raw if ch.isalpha()]
    # Shouting: a message of several words written in capitals reads as anger on WhatsApp.
    if len(letters) >= 8 and sum(ch.isupper() for ch in letters) / len(letters) > 0.8:
        matched.append("sentiment.all_caps")
        score -= 0.5
    if re.search(r"[!?]{3,}", raw):
        matched.append("sentiment.exclamations")
        score -= 0.5
    value = max(-1.0, min(1.0, score / 2.5))
    if value <= -0.25:
        label = "negative"
    elif value >= 0.25:
        label = "positive"
    else:
        label = "neutral"
    return label, round(value, 3), matched


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def _score(normalized: str) -> tuple[dict[str, float], list[str]]:
    hits: dict[str, _Rule] = {}
    matched: list[str] = []
    for rule in _RULES:
        match = rule.pattern.search(normalized)
        if match is None:
            continue
        if rule.negatable and _NEGATION_BEFORE.search(normalized[: match.start()]):
            # Look for a later, un-negated occurrence before giving up on the rule.
            later = [
                m
                for m in rule.pattern.finditer(normalized, match.end())
                if not _NEGATION_BEFORE.search(normalized[: m.start()])
            ]
            if not later:
                matched.append(f"{rule.id}:negated")
                continue
        hits[rule.id] = rule
    vetoed = {vetoed_id for rule in hits.values() for vetoed_id in rule.vetoes}
    scores: dict[str, float] = dict.fromkeys(INTENTS, 0.0)
    for rule_id, rule in hits.items():
        if rule_id in vetoed:
            matched.append(f"{rule_id}:vetoed")
            continue
        scores[rule.intent] += rule.weight
        matched.append(rule_id)
    # Greetings open most messages; however many there are, any real request must outweigh them.
    scores["greeting"] = min(scores["greeting"], _GREETING_CAP)
    return scores, matched


def _strength(score: float) -> float:
    # Saturating map from summed weights to [0, 1): one strong keyword (3.5) gives about 0.75.
    return 1.0 - math.exp(-score / 2.5)


def classify(text: str) -> Classification:
    """Classify one customer message; see the module docstring for the contract."""
    normalized = normalize(text)
    scores, matched = _score(normalized)
    sentiment, sentiment_score, sentiment_matched = _sentiment(text, normalized)

    ranked = sorted(INTENTS, key=lambda intent: (-scores[intent], _TIE_ORDER.index(intent)))
    intent = ranked[0]
    for priority in ("cancellation", "human"):
        if scores[priority] >= _PRIORITY_THRESHOLD:
            intent = priority
            matched.append(f"priority.{priority}")
            break

    best = scores[intent]
    if best < _MIN_SCORE:
        # Nothing recognisable: "other", with a confidence that keeps it away from automation.
        confidence = 0.2
        return Classification(
            intent="other",
            sentiment=sentiment,
            sentiment_score=sentiment_score,
            confidence=confidence,
            matched=tuple(matched + sentiment_matched),
        )

    runner_up = max(scores[other] for other in INTENTS if other != intent)
    margin = max(0.0, best - runner_up) / max(best, runner_up)
    confidence = _strength(best) * (0.5 + 0.5 * margin)
    return Classification(
        intent=intent,
        sentiment=sentiment,
        sentiment_score=sentiment_score,
        confidence=round(min(1.0, max(0.0, confidence)), 3),
        matched=tuple(matched + sentiment_matched),
    )
