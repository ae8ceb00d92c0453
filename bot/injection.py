"""Heuristic detection of prompt-injection attempts in customer messages (pt-BR and English).

Pure Python, no Django. This is one layer among several (the LLM has no tools, its output is
schema-constrained and validated): a hit does not block anything by itself, it routes the
conversation to a human and is flagged for review. The patterns therefore aim at phrasings that
address the model ("ignore as instruções anteriores", "você agora é", "revele seu prompt") and
stay quiet on what customers ordinarily write to an ISP.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["injection_hits", "looks_like_injection"]

# Written against the normalised text: lower case, no accents, punctuation turned into spaces
# (except "<", ">", "[", "]" and "#", which mark fake role headers), single spaces.
_PATTERNS: tuple[tuple[str, str], ...] = (
    # Portuguese
    (
        "pt.ignore_instructions",
        # Imperatives only: "o tecnico ignorou minhas orientacoes" is a complaint, not an attack.
        r"\b(?:ignore|ignora|ignorem|desconsidere|desconsidera|despreze|despreza|desobedeca) "
        r"(?:\w+ ){0,3}"
        r"(?:instruc\w*|regras|ordens|orientac\w*|comandos|diretrizes|prompt\w*|mensagens anteriores)",
    ),
    (
        "pt.forget",
        r"\b(?:esqueca|esquece|esquecam) (?:de )?(?:tudo|todas|todo|as instruc\w*|suas|o que "
        r"(?:te )?(?:disseram|falaram|mandaram))",
    ),
    (
        "pt.new_role",
        r"\b(?:voce agora e|agora voce e|voce passa a ser|a partir de agora voce (?:e|sera|vai ser|"
        r"vai agir|deve agir|age|atua|vai atuar|responde como))\b",
    ),
    (
        "pt.act_as",
        r"\b(?:aja|atue|comporte se|se passe|personifique) (?:como|por)\b"
        r"|\b(?:finja|finge|fingir) (?:que (?:voce|vc|e|eh)|ser)\b",
    ),
    (
        "pt.system_prompt",
        r"\bprompt (?:do|de) sistema\b|\bprompt (?:inicial|original|oculto|secreto)\b"
        r"|\b(?:suas|as) instruc\w* (?:iniciais|internas|originais|do sistema|de sistema|secretas)",
    ),
    (
        "pt.reveal",
        r"\b(?:revel|mostr|exib|imprim|repit|diga|diz|conte|vaze|copie)\w* (?:\w+ ){0,3}"
        r"(?:seu prompt|o prompt|suas instruc\w*|suas regras|sua configuracao|suas diretrizes)",
    ),
    (
        "pt.answer_only",
        r"\b(?:responda|responde|escreva|diga|retorne) (?:\w+ ){0,2}(?:apenas|somente|so) "
        r"(?:com|em|a palavra|o texto|sim\b)",
    ),
    ("pt.new_instructions", r"\bnovas? instruc\w*|\binstruc\w* do sistema\b"),
    (
        "pt.unrestricted",
        r"\bmodo (?:desenvolvedor|dev|deus|irrestrito|sem restric\w*|sem filtro\w*|jailbreak)\b"
        r"|\b(?:responda|responde|fale|fala|seja|fique|aja) (?:\w+ ){0,2}sem (?:nenhuma )?"
        r"(?:restric\w*|filtros?|censura|regras)\b"
        r"|\bnao siga (?:mais )?(?:as|suas) (?:regras|instruc\w*|diretrizes)",
    ),
    # English
    (
        "en.ignore_instructions",
        r"\b(?:ignore|disregard|forget|override|bypass) (?:\w+ ){0,3}"
        r"(?:instructions|rules|prompts?|guidelines|directives|messages)\b",
    ),
    ("en.forget_everything", r"\bforget (?:everything|all of (?:it|that)|what you)\b"),
    ("en.new_role", r"\byou are now\b|\bfrom now on you (?:are|will|must|act)\b"),
    ("en.act_as", r"\bact as\b|\bpretend (?:to be|you are|that you)\b|\broleplay as\b"),
    ("en.system_prompt", r"\bsystem prompt\b|\binitial prompt\b|\bhidden prompt\b"),
    (
        "en.reveal",
        r"\b(?:reveal|show|print|repeat|output|leak|tell me) (?:\w+ ){0,3}"
        r"(?:prompt|instructions|system message|rules)\b",
    ),
    ("en.answer_only", r"\b(?:respond|reply|answer) (?:only|just) with\b"),
    ("en.jailbreak", r"\bjailbreak\w*|\bdeveloper mode\b|\bdan mode\b|\bdo anything now\b"),
    # Fake role markers pasted to look like part of the conversation transcript.
    (
        "any.role_marker",
        r"<\s*/?\s*(?:system|sistema|instructions|mensagem cliente|assistant)\s*>"
        r"|\[\s*(?:system|sistema|inst)\s*\]|#{2,}\s*(?:system|sistema)\b"
        r"|\b(?:role|papel)\s*(?:system|sistema)\b",
    ),
)
_COMPILED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern)) for name, pattern in _PATTERNS
)
_NON_WORD = re.compile(r"[^a-z0-9<>\[\]#/]+")


def _normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # "mensagem_cliente" and "mensagem-cliente" both become "mensagem cliente".
    return " " + _NON_WORD.sub(" ", plain.replace("_", " ")).strip() + " "


def injection_hits(text: str) -> tuple[str, ...]:
    """Identifiers of the injection patterns found in ``text`` (empty when none).

    The identifiers name patterns, never customer text, so they can be logged.
    """
    normalized = _normalize(text)
    return tuple(name for name, pattern in _COMPILED if pattern.search(normalized))


def looks_like_injection(text: str) -> bool:
    """True when ``text`` reads like an attempt to steer the model; see the module docstring."""
    return bool(injection_hits(text))
