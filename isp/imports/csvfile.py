"""The file side of the customer-base import: the documented columns, the header (delimiter
sniffed, names matched without accents, case or punctuation), decoding and the records.

A file that cannot be read, decoded or has no valid header raises ``ImportFileError`` before
anything is written.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from django.utils.translation import gettext as _

DEFAULT_ENCODING = "utf-8-sig"  # UTF-8, with or without the BOM spreadsheets write


@dataclass(frozen=True)
class Column:
    """A column of the format: the ``Contract`` field it fills, its pt-BR header, aliases."""

    field: str
    header: str
    aliases: tuple[str, ...] = ()
    required: bool = False


# The documented format (README "Importing the customer base"). Headers are matched after
# removing accents, case and punctuation ("Situação" = "situacao", "Nº do contrato" =
# "n_do_contrato"); English aliases are accepted too.
COLUMNS: tuple[Column, ...] = (
    Column(
        "ref",
        "contrato",
        ("numero_contrato", "numero_do_contrato", "n_contrato", "contract", "contract_ref"),
        required=True,
    ),
    Column(
        "holder_name",
        "titular",
        ("nome", "nome_titular", "nome_do_titular", "cliente", "holder", "holder_name", "name"),
        required=True,
    ),
    Column("cpf", "cpf", ("cpf_titular", "cpf_do_titular", "holder_cpf"), required=True),
    Column(
        "phones",
        "telefones",
        ("telefone", "celular", "celulares", "fone", "whatsapp", "phone", "phones"),
        required=True,
    ),
    Column("plan_name", "plano", ("plan", "plan_name"), required=True),
    Column(
        "status",
        "situacao",
        ("situacao_contrato", "situacao_do_contrato", "status", "contract_status"),
        required=True,
    ),
    Column("city", "cidade", ("municipio", "city")),
    Column("neighbourhood", "bairro", ("neighbourhood", "neighborhood", "district")),
    Column("address", "endereco", ("logradouro", "endereco_de_instalacao", "address", "street")),
    Column("pop", "pop"),
    Column("olt", "olt"),
    Column("box", "cto", ("caixa", "caixa_cto", "box", "splitter")),
    Column("download_mbps", "download_mbps", ("download", "velocidade_download")),
    Column("upload_mbps", "upload_mbps", ("upload", "velocidade_upload")),
    Column("monthly_price", "mensalidade", ("valor", "valor_mensal", "monthly_price", "price")),
)
_BY_NAME: dict[str, Column] = {}
for _column in COLUMNS:
    for _name in (_column.header, *_column.aliases):
        _BY_NAME[_name] = _column

# Contract statuses as ERPs spell them (normalised like headers).
STATUS_VALUES: dict[str, str] = {
    **dict.fromkeys(("ativo", "ativa", "active", "habilitado", "habilitada"), "active"),
    **dict.fromkeys(
        (
            "bloqueado",
            "bloqueada",
            "blocked",
            "suspenso",
            "suspensa",
            "bloqueado_por_falta_de_pagamento",
            "bloqueio_financeiro",
        ),
        "blocked",
    ),
    **dict.fromkeys(("cancelado", "cancelada", "cancelled", "canceled", "rescindido"), "cancelled"),
}


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, wrong encoding, wrong header); nothing
    was written. ``message`` is pt-BR, for people, and holds no value of the file."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Header:
    delimiter: str
    positions: dict[str, int]  # field → cell index
    labels: dict[str, str]  # field → the header as the file writes it
    ignored: list[str]
    width: int


def normalise_name(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.sub(r"[^0-9a-z]+", "_", plain).strip("_")


def sniff_delimiter(line: str) -> str:
    """``;`` or ``,``, whichever the header line has more of outside quotes."""
    unquoted = re.sub(r'"[^"]*"', "", line)
    return ";" if unquoted.count(";") >= unquoted.count(",") else ","


def parse_header(first_line: str) -> Header:
    delimiter = sniff_delimiter(first_line)
    cells = next(csv.reader([first_line], delimiter=delimiter), [])
    positions: dict[str, int] = {}
    labels: dict[str, str] = {}
    ignored: list[str] = []
    for index, raw in enumerate(cells):
        label = raw.strip()
        column = _BY_NAME.get(normalise_name(label))
        if column is None:
            if label:
                ignored.append(label)
            continue
        if column.field in positions:
            raise ImportFileError(
                _("O cabeçalho tem duas colunas para “%(column)s”: “%(a)s” e “%(b)s”.")
                % {"column": column.header, "a": labels[column.field], "b": label}
            )
        positions[column.field] = index
        labels[column.field] = label
    missing = [c.header for c in COLUMNS if c.required and c.field not in positions]
    if missing:
        raise ImportFileError(
            _(
                "O cabeçalho (linha 1) não tem as colunas obrigatórias: %(missing)s. "
                "Colunas esperadas: %(expected)s (separadas por ; ou ,)."
            )
            % {
                "missing": ", ".join(missing),
                "expected": ", ".join(c.header for c in COLUMNS),
            }
        )
    return Header(delimiter, positions, labels, ignored, len(cells))


def text_stream(binary: IO[bytes], encoding: str) -> IO[str]:
    return io.TextIOWrapper(binary, encoding=encoding, newline="")


def decode_error(line: int, encoding: str) -> ImportFileError:
    return ImportFileError(
        _(
            "O arquivo não está em %(encoding)s (perto da linha %(line)d). "
            "Exporte-o como CSV UTF-8 ou informe a codificação (por exemplo cp1252)."
        )
        % {
            "encoding": "UTF-8" if encoding.lower() in ("utf-8-sig", "utf-8", "utf8") else encoding,
            "line": line,
        }
    )


def records(text: IO[str], header: Header) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, cells) of every non-blank record after the header."""
    reader = csv.reader(text, delimiter=header.delimiter)
    next(reader, None)
    last = reader.line_num
    for cells in reader:
        start, last = last + 1, reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        yield start, cells


def open_checked(open_file: Callable[[], IO[bytes]], encoding: str) -> tuple[Header, int]:
    """Decode the whole file once: its header and its number of rows (or ImportFileError)."""
    try:
        binary = open_file()
    except OSError as exc:
        raise ImportFileError(
            _("Não foi possível ler o arquivo (%(reason)s).") % {"reason": exc.strerror or exc}
        ) from exc
    try:
        text = text_stream(binary, encoding)
        line = 1
        try:
            first = text.readline()
            if not first.strip():
                raise ImportFileError(_("O arquivo está vazio (nem o cabeçalho na linha 1)."))
            header = parse_header(first.rstrip("\r\n"))
            text.seek(0)
            rows = 0
            for line, _cells in records(text, header):  # noqa: B007 (line: for the error)
                rows += 1
        except UnicodeDecodeError as exc:
            raise decode_error(line + 1, encoding) from exc
        except csv.Error as exc:
            raise ImportFileError(
                _("O arquivo não é um CSV legível (perto da linha %(line)d).") % {"line": line + 1}
            ) from exc
        except LookupError as exc:
            raise ImportFileError(
                _("Codificação desconhecida: %(encoding)s.") % {"encoding": encoding}
            ) from exc
        return header, rows
    finally:
        binary.close()
