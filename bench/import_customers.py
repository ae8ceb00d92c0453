"""Customer-base import benchmark: ``manage.py import_customers`` on a valid 100,000-row file.

    .venv/bin/python bench/import_customers.py                 # 100,000 rows
    .venv/bin/python bench/import_customers.py --rows 20000    # smaller

PostgreSQL database ``ispsupport_bench_import`` (BENCH_DATABASE_URL; created and migrated when
missing; its contract tables are emptied first). The file is generated (deterministic: seed
2026) in the format of README "Importing the customer base": ``;``-separated, pt-BR headers,
national phone spellings (a fifth with a second number, some old 8-digit mobiles), formatted
CPFs with valid check digits, prices in ``99,90``.

Measured, through the real command (the two passes over the file, validation, encryption,
blind indexes, batches of CONTRACT_IMPORT_BATCH_SIZE rows, the progress bar on stderr):

1. the first import: every row created;
2. the same file again: every row unchanged (reads and compares, writes only ``synced_at``);
3. ``--dry-run`` of the same file.

Prints, for each, the wall time, the CPU time of this process (the Python side: parsing,
validation, encryption, Django; PostgreSQL's own work is not in it), rows/s, and the machine's
load average before and after (the wall time depends on it: note it beside the figure).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ispsupport_bench_import"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"


def _ensure_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    server = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


_ensure_database()

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from isp.models import Contract, ContractPhone  # noqa: E402
from isp.seed import PLACES, PLANS, STREETS, fake_cpf, network_tags  # noqa: E402

FIRST = ["Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Heitor", "Íris", "João"]
LAST = ["Silva", "Souza", "Oliveira", "Santos", "Lima", "Pereira", "Conceição", "Araújo"]
HEADER = (
    "contrato;titular;cpf;telefones;plano;situacao;cidade;bairro;endereco;pop;olt;cto;"
    "download_mbps;upload_mbps;mensalidade"
)


def generate(path: Path, rows: int, seed: int = 2026) -> None:
    rng = random.Random(seed)
    statuses = ["ativo"] * 8 + ["bloqueado", "cancelado"]
    ddds = ["11", "19", "13", "21", "31", "41", "51", "61", "71", "81"]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\r\n")
        for n in range(rows):
            cpf = fake_cpf(rng)
            ddd = rng.choice(ddds)
            local = f"{rng.randint(0, 9999):04d}-{n % 10000:04d}"
            mobile = f"({ddd}) 9{rng.randint(6000, 9999)}-{n % 10000:04d}"
            if n % 7 == 0:
                mobile = f"{ddd} {rng.randint(6000, 9999)}-{n % 10000:04d}"  # old 8-digit mobile
            phones = mobile if n % 5 else f"{mobile} | {ddd} 3{local[1:]}"
            name, down, up, price = PLANS[rng.randrange(len(PLANS))]
            city = rng.choice(list(PLACES))
            hood = rng.choice(PLACES[city])
            tags = network_tags(city, hood, rng.randint(1, 40))
            fields = [
                f"{700000 + n}",
                f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}",
                f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}",
                phones,
                name,
                rng.choice(statuses),
                city,
                hood,
                f"{rng.choice(STREETS)}, {rng.randint(10, 2500)}",
                tags["pop"],
                tags["olt"],
                tags["box"],
                str(down),
                str(up),
                f"{price}".replace(".", ","),
            ]
            out.write(";".join(fields) + "\r\n")


def timed_import(path: Path, *args: str) -> tuple[float, float, str]:
    """(wall seconds, this process's CPU seconds, the command's summary)."""
    out = io.StringIO()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        call_command("import_customers", str(path), *args, stdout=out)
    except SystemExit as exc:
        if exc.code:
            print(out.getvalue())
            raise
    return time.perf_counter() - started, time.process_time() - cpu, out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE isp_contractphone, isp_contract CASCADE")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clientes.csv"
        t0 = time.perf_counter()
        generate(path, args.rows)
        size = path.stat().st_size / 1e6
        print(
            f"file: {args.rows} rows, {size:.1f} MB, generated in {time.perf_counter() - t0:.1f} s"
        )
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        report = str(Path(tmp) / "report.csv")
        for label, extra in (
            ("first import (all created)", ()),
            ("same file again (all unchanged)", ()),
            ("--dry-run", ("--dry-run",)),
        ):
            seconds, cpu, summary = timed_import(path, "--report", report, *extra)
            counts = summary.splitlines()[1].strip()
            print(
                f"{label:32s} {seconds:6.1f} s ({cpu:5.1f} s CPU here)  "
                f"{args.rows / seconds:7,.0f} rows/s   {counts}",
                flush=True,
            )
        contracts, phones = Contract.objects.count(), ContractPhone.objects.count()
        print(f"in the database: {contracts} contracts, {phones} phones")
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
