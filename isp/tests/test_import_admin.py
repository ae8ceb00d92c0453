"""The customer-base import in the admin: who may upload, what the run's page shows, the report
download, and that the uploaded file (personal data) does not outlive its import."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.tests.helpers import login_verified
from compliance.registry import get
from isp.models import Contract, ContractImport

pytestmark = pytest.mark.django_db

ADD = "/admin/isp/contractimport/add/"
CSV = (
    b"contrato;titular;cpf;telefones;plano;situacao;cidade\r\n"
    b"60001;Fernanda Ribeiro;363.309.466-04;(11) 99871-2001;Fibra 300;ativo;Santos\r\n"
    b"60002;Ricardo Nogueira;873.796.819-07;11 99871-2002;Fibra 500;suspenso;Santos\r\n"
    b"60003;Ana Lima;111.111.111-11;11 99871-2003;Fibra 300;ativo;Santos\r\n"
)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def upload(client, data: bytes = CSV, *, dry_run: bool = False, name: str = "clientes.csv"):
    payload = {"file": SimpleUploadedFile(name, data, content_type="text/csv")}
    if dry_run:
        payload["dry_run"] = "on"
    return client.post(ADD, payload)


@pytest.mark.parametrize("role", ["agent", "dpo"])
def test_agents_and_the_dpo_may_not_upload_a_customer_base(client, role, request, media_root):
    login_verified(client, request.getfixturevalue(role))

    assert client.get(ADD).status_code == 403
    assert upload(client).status_code == 403
    assert not ContractImport.objects.exists() and stored_files(media_root) == []


@pytest.mark.parametrize("role", ["supervisor", "admin_member"])
def test_supervisors_and_admins_upload_follow_the_run_and_download_the_report(
    client, role, request, media_root, django_capture_on_commit_callbacks
):
    login_verified(client, request.getfixturevalue(role))

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client)

    run = ContractImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:isp_contractimport_change", args=[run.pk])
    assert run.status == ContractImport.Status.DONE
    assert (run.created_count, run.rejected_count, run.total_rows) == (2, 1, 3)
    assert run.created_by == request.getfixturevalue(role)
    assert sorted(Contract.objects.values_list("ref", flat=True)) == ["60001", "60002"]

    page = client.get(response["Location"]).content.decode()
    assert "3 de 3 linhas (100%)" in page and "Concluída" in page
    report_url = reverse("admin:isp_contractimport_report", args=[run.pk])
    assert report_url in page

    download = client.get(report_url)
    assert download.status_code == 200
    assert "attachment" in download["Content-Disposition"]
    lines = b"".join(download.streaming_content).decode("utf-8-sig").splitlines()
    assert lines == [
        "linha;coluna;motivo",
        "4;cpf;CPF inválido: os dígitos verificadores não conferem.",
    ]
    # The upload is gone; only the report (no personal data) is stored, encrypted at rest.
    files = stored_files(media_root)
    assert [f.parent.name for f in files] == ["reports"]
    assert b"linha" not in files[0].read_bytes()
    assert not run.file


def test_a_file_without_the_required_columns_is_a_form_error_and_nothing_is_queued(
    client, supervisor, media_root
):
    login_verified(client, supervisor)

    response = upload(client, b"nome;documento\r\nAna;52998224725\r\n")

    assert response.status_code == 200
    assert "não tem as colunas obrigatórias" in response.content.decode()
    assert not ContractImport.objects.exists() and stored_files(media_root) == []


def test_a_file_not_in_utf8_is_a_form_error(client, supervisor, media_root):
    login_verified(client, supervisor)

    response = upload(client, CSV.decode().replace("Ana", "Conceição").encode("cp1252"))

    assert response.status_code == 200
    assert "não está em UTF-8" in response.content.decode()
    assert not ContractImport.objects.exists()


def test_a_dry_run_upload_reports_what_would_happen_and_writes_no_contract(
    client, supervisor, media_root, django_capture_on_commit_callbacks
):
    login_verified(client, supervisor)

    with django_capture_on_commit_callbacks(execute=True):
        upload(client, dry_run=True)

    run = ContractImport.objects.get()
    assert (run.status, run.created_count, run.rejected_count) == ("done", 2, 1)
    assert not Contract.objects.exists()


def test_a_run_started_twice_imports_once(client, supervisor, media_root):
    from isp import imports

    login_verified(client, supervisor)
    upload(client)  # queued: the on-commit task did not run
    run = ContractImport.objects.get()
    assert run.status == ContractImport.Status.PENDING and run.file

    imports.contract_import_run(import_id=run.pk)
    imports.contract_import_run(import_id=run.pk)

    run.refresh_from_db()
    assert (run.status, run.created_count) == ("done", 2)
    assert Contract.objects.count() == 2


def test_retention_removes_uploads_left_behind_and_old_runs(client, supervisor, media_root):
    login_verified(client, supervisor)
    upload(client)  # never ran: its file is still stored
    left = ContractImport.objects.get()
    provider = get("isp.contract_imports")
    now = timezone.now()

    assert provider.purge(now=now, batch_size=10, dry_run=False) == {
        "contract_import_files": 0,
        "contract_imports": 0,
    }
    ContractImport.objects.update(created_at=now - timedelta(days=2))
    assert provider.purge(now=now, batch_size=10, dry_run=False) == {
        "contract_import_files": 1,
        "contract_imports": 0,
    }
    left.refresh_from_db()
    assert not left.file and left.status == "failed" and stored_files(media_root) == []

    ContractImport.objects.update(created_at=now - timedelta(days=91))
    assert provider.purge(now=now, batch_size=10, dry_run=False)["contract_imports"] == 1
    assert not ContractImport.objects.exists()


def test_a_large_upload_kept_in_a_temporary_file_is_checked_and_imported(
    client, supervisor, media_root, settings, django_capture_on_commit_callbacks
):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64  # Django spools it to a temporary file
    login_verified(client, supervisor)

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client)

    assert response.status_code == 302
    assert ContractImport.objects.get().created_count == 2
