"""isp's personal data, declared to the compliance registry (see compliance.registry).

What we hold about a customer here, and whose it is:

- **The ERP's records** — demo contracts (holder, CPF, address, phones), their invoices,
  service orders and trust unlocks. In a real deployment these live in the ISP's management
  system; the demo tables stand for it. They are the ISP's contract records (LGPD art. 7º, V,
  and the Anatel contract-keeping duties), so an erasure here *keeps* them, says so in the
  answer, and the ISP handles the request in its ERP.
- **Our cached copies** — contracts a real ERP returned (``source=erp``) or an imported ERP
  export brought (``source=import``), trust-unlock grants recorded for them, and each
  conversation's identification state. Erased on request, and purged by retention
  (``erp_cache``, ``trust_unlocks``, ``identity_states``).
- **Import uploads** — the CSV a supervisor uploads (``isp.ContractImport.file``), encrypted
  at rest and deleted when its import ends (``contract_import_files`` removes any left behind);
  it is not linked to a data subject until imported, so it is exported and erased through the
  contracts it becomes.

A customer's contracts are found through their conversations' identification states, their
WhatsApp number (phone blind index) and, when known, their CPF (CPF blind index).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from compliance import registry
from compliance.registry import Category, ErasureReport, LegalBasis, Provider, Retention
from compliance.services import batched_delete
from compliance.services.retention import retention_cutoff
from conversations.phones import normalize_phone
from isp.cpf import is_valid_cpf
from isp.models import (
    CampaignRecipient,
    Contract,
    ContractImport,
    ContractPhone,
    ConversationContract,
    Invoice,
    OutageConversation,
    OutageReport,
    ServiceOrder,
    TrustUnlock,
    cpf_index,
    phone_index,
)

ERP_RECIPIENT = _lazy(
    "ERP do provedor (sistema de gestão), controlador: consultado com o telefone ou o CPF para "
    "identificar o cliente e trazer contratos, faturas, conexão e visitas"
)


def _ts(value: Any) -> str | None:
    return value.isoformat() if value else None


def _subject_contracts(customer: Any):
    """Contract rows linked to the customer by conversation, phone or CPF."""
    refs: set[str] = set()
    for state_refs in ConversationContract.objects.filter(
        conversation__customer=customer
    ).values_list("contract_refs", flat=True):
        refs.update(r for r in (state_refs or []) if isinstance(r, str))
    condition_pks = set(Contract.objects.filter(ref__in=refs).values_list("pk", flat=True))
    phone = getattr(customer, "phone_e164", None) or normalize_phone(
        getattr(customer, "wa_id", None)
    )
    if phone:
        condition_pks.update(
            ContractPhone.objects.filter(phone_index=phone_index(phone)).values_list(
                "contract_id", flat=True
            )
        )
    cpf = "".join(ch for ch in (getattr(customer, "cpf", "") or "") if ch.isdigit())
    if is_valid_cpf(cpf):
        condition_pks.update(
            Contract.objects.filter(cpf_index=cpf_index(cpf)).values_list("pk", flat=True)
        )
    return Contract.objects.filter(pk__in=condition_pks).prefetch_related("phones")


class ContractsProvider(Provider):
    key = "isp.contracts"
    label = _lazy("Contratos, faturas e identificação no autoatendimento")
    purpose = _lazy(
        "Identificar o titular antes de mostrar dados do contrato e prestar o autoatendimento "
        "(2ª via, desbloqueio em confiança, situação da conexão, visita técnica, plano); "
        "localizar o contrato na rede para avisos de falha e campanhas"
    )
    fields = {
        "isp.contract": {
            "holder_name": Category.IDENTIFICATION,
            "cpf": Category.IDENTIFICATION,
            "cpf_index": Category.IDENTIFICATION,
            "address": Category.CONTACT,
            "city": Category.CONTACT,
            "neighbourhood": Category.CONTACT,
            "plan_name": Category.CONTRACT,
            "ref": Category.CONTRACT,
        },
        "isp.contractphone": {
            "phone": Category.CONTACT,
            "phone_index": Category.CONTACT,
        },
        "isp.invoice": {
            "digitable_line": Category.CONTRACT,
            "pix_code": Category.CONTRACT,
            "amount": Category.CONTRACT,
        },
        "isp.trustunlock": {"contract_ref": Category.CONTRACT},
        "isp.conversationcontract": {
            "contract_refs": Category.CONTRACT,
            "selected_ref": Category.CONTRACT,
        },
    }
    exempt = {
        "isp.serviceorder": {"reason": "Código do motivo da visita, sem texto do cliente."},
        "isp.conversationcontract": {"offered": "Ids das janelas de visita oferecidas."},
    }
    legal_basis = (LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION)
    retention = (
        Retention(
            "identity_states",
            _lazy("após a identificação expirar"),
        ),
        Retention(
            "erp_cache",
            _lazy("após a última leitura no ERP ou importação (cópias do ERP)"),
        ),
        Retention(
            "trust_unlocks",
            _lazy("após a concessão do desbloqueio (política do provedor)"),
        ),
    )
    legal_hold = _lazy(
        "Os registros do contrato no sistema de gestão do provedor (ERP): titular, endereço, "
        "faturas e ordens de serviço são do provedor, necessários ao contrato e às obrigações "
        "de guarda da Anatel (LGPD art. 7º, II e V; art. 16, I); o pedido é tratado pelo "
        "provedor no ERP. Apagamos as nossas cópias."
    )
    recipients = (ERP_RECIPIENT,)
    order = 10  # before conversations: the identification states point at them

    def count(self, customer: Any) -> dict[str, int]:
        contracts = _subject_contracts(customer)
        return {
            _("Contratos ligados ao seu número ou CPF"): contracts.count(),
            _("Faturas"): Invoice.objects.filter(contract__in=contracts).count(),
            _("Identificações no autoatendimento"): ConversationContract.objects.filter(
                conversation__customer=customer
            ).count(),
        }

    def export(self, customer: Any) -> dict[str, Any]:
        contracts = list(_subject_contracts(customer))
        refs = [c.ref for c in contracts]
        return {
            "isp_contracts": [
                {
                    "ref": c.ref,
                    "source": c.source,
                    "holder_name": c.holder_name,
                    "cpf": c.cpf,
                    "address": c.address,
                    "city": c.city,
                    "neighbourhood": c.neighbourhood,
                    "network": {"pop": c.pop, "olt": c.olt, "box": c.box},
                    "plan": {
                        "name": c.plan_name,
                        "download_mbps": c.download_mbps,
                        "upload_mbps": c.upload_mbps,
                        "monthly_price": str(c.monthly_price),
                    },
                    "status": c.status,
                    "phones": [p.phone for p in c.phones.all()],
                    "invoices": [
                        {
                            "number": i.number,
                            "reference_month": _ts(i.reference_month),
                            "due_date": _ts(i.due_date),
                            "amount": str(i.amount),
                            "status": i.status,
                            "digitable_line": i.digitable_line,
                            "pix_code": i.pix_code,
                        }
                        for i in c.invoices.order_by("due_date")
                    ],
                    "service_orders": [
                        {
                            "number": o.number,
                            "window_start": _ts(o.window.starts_at),
                            "window_end": _ts(o.window.ends_at),
                            "status": o.status,
                        }
                        for o in c.service_orders.select_related("window")
                    ],
                }
                for c in contracts
            ],
            "isp_trust_unlocks": [
                {"contract": t.contract_ref, "granted_at": _ts(t.granted_at), "until": _ts(t.until)}
                for t in TrustUnlock.objects.filter(contract_ref__in=refs).order_by("granted_at")
            ],
            "isp_identifications": [
                {
                    "conversation_id": s.conversation_id,
                    "method": s.method,
                    "contracts": s.contract_refs,
                    "identified_at": _ts(s.identified_at),
                    "expires_at": _ts(s.expires_at),
                }
                for s in ConversationContract.objects.filter(
                    conversation__customer=customer
                ).order_by("pk")
            ],
        }

    def object_refs(self, customer: Any):
        for contract in _subject_contracts(customer).filter(source__in=Contract.COPY_SOURCES):
            yield ("isp.contract", str(contract.pk))
            for phone in contract.phones.all():
                yield ("isp.contractphone", str(phone.pk))

    def erase(self, customer: Any, report: ErasureReport, *, request: Any = None) -> None:
        contracts = _subject_contracts(customer)
        copies = contracts.filter(source__in=Contract.COPY_SOURCES)
        copy_refs = list(copies.values_list("ref", flat=True))
        report.add(
            "deleted",
            "isp.trustunlock",
            TrustUnlock.objects.filter(contract_ref__in=copy_refs).delete()[0],
        )
        phones = ContractPhone.objects.filter(contract__in=copies).count()
        count = copies.count()
        copies.delete()
        report.add("deleted", "isp.contract", count)
        report.add("deleted", "isp.contractphone", phones)
        report.add(
            "deleted",
            "isp.conversationcontract",
            ConversationContract.objects.filter(conversation__customer=customer).delete()[0],
        )
        kept = contracts.filter(source=Contract.Source.DEMO)
        report.add("held", "isp.contract (ERP)", kept.count())
        report.add("held", "isp.invoice (ERP)", Invoice.objects.filter(contract__in=kept).count())
        report.add(
            "held",
            "isp.serviceorder (ERP)",
            ServiceOrder.objects.filter(contract__in=kept).count(),
        )

    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        return {
            "identity_states": batched_delete(
                ConversationContract.objects.filter(
                    expires_at__lt=retention_cutoff("identity_states", now)
                ),
                batch_size=batch_size,
                dry_run=dry_run,
            ),
            "erp_cache": batched_delete(
                Contract.objects.filter(
                    source__in=Contract.COPY_SOURCES,
                    synced_at__lt=retention_cutoff("erp_cache", now),
                ),
                batch_size=batch_size,
                dry_run=dry_run,
            ),
            "trust_unlocks": batched_delete(
                TrustUnlock.objects.filter(granted_at__lt=retention_cutoff("trust_unlocks", now)),
                batch_size=batch_size,
                dry_run=dry_run,
            ),
        }


class OutagesCampaignsProvider(Provider):
    """Who was told about an outage, who reported no connection, who a campaign reached."""

    key = "isp.outages_campaigns"
    label = _lazy("Avisos de falha na rede, relatos de falta de conexão e campanhas")
    purpose = _lazy(
        "Avisar o cliente de uma falha conhecida na sua região e do fim dela; detectar falhas "
        "pelos relatos de falta de conexão; enviar avisos do serviço (manutenção, vencimento) e, "
        "com consentimento, ofertas"
    )
    fields = {
        "isp.outageconversation": {"contract_ref": Category.CONTRACT},
        "isp.outagereport": {
            "contract_ref": Category.CONTRACT,
            "city": Category.CONTACT,
            "neighbourhood": Category.CONTACT,
        },
        "isp.campaignrecipient": {"contract_ref": Category.CONTRACT},
    }
    exempt = {
        "isp.campaignrecipient": {"skip_reason": "Código do motivo de não envio (sem texto)."},
        "isp.campaign": {
            "template_name": "Nome do modelo aprovado pela Meta.",
            "template_body": "Texto do modelo, o mesmo para todos os destinatários.",
            "contract_statuses": "Critério do segmento (ativo, bloqueado…), de ninguém em particular.",
            "plans": "Critério do segmento (planos), de ninguém em particular.",
            "cities": "Critério do segmento (cidades), de ninguém em particular.",
            "parameters": "Valores dos marcadores do modelo, os mesmos para todos os destinatários.",
        },
        "isp.outage": {"public_message": "Aviso escrito pela equipe, o mesmo para todos."},
    }
    legal_basis = (LegalBasis.CONTRACT, LegalBasis.CONSENT, LegalBasis.LEGITIMATE_INTEREST)
    retention = (
        Retention("outage_reports", _lazy("após o relato (detecção de falhas)")),
        Retention("outage_links", _lazy("após o encerramento da falha")),
        Retention("campaign_recipients", _lazy("após o término da campanha")),
    )
    order = 9  # before conversations: the links point at conversations and messages

    def count(self, customer: Any) -> dict[str, int]:
        return {
            _("Conversas vinculadas a falhas na rede"): OutageConversation.objects.filter(
                customer=customer
            ).count(),
            _("Relatos de falta de conexão"): OutageReport.objects.filter(
                customer=customer
            ).count(),
            _("Campanhas"): CampaignRecipient.objects.filter(customer=customer).count(),
        }

    def export(self, customer: Any) -> dict[str, Any]:
        links = OutageConversation.objects.filter(customer=customer).select_related("outage")
        recipients = CampaignRecipient.objects.filter(customer=customer).select_related(
            "campaign", "message"
        )
        return {
            "isp_outage_notices": [
                {
                    "outage": link.outage.title,
                    "region": link.outage.region_label,
                    "conversation_id": link.conversation_id,
                    "contract": link.contract_ref,
                    "attached_at": _ts(link.attached_at),
                    "all_clear": link.all_clear,
                    "all_clear_at": _ts(link.all_clear_at),
                }
                for link in links.order_by("pk")
            ],
            "isp_outage_reports": [
                {
                    "contract": r.contract_ref,
                    "region": r.region_label,
                    "reported_at": _ts(r.reported_at),
                }
                for r in OutageReport.objects.filter(customer=customer).order_by("pk")
            ],
            "isp_campaigns": [
                {
                    "campaign": r.campaign.title,
                    "purpose": r.campaign.purpose,
                    "template": r.campaign.template_name,
                    "contract": r.contract_ref,
                    "state": r.state,
                    "skip_reason": r.skip_reason,
                    "delivery": r.message.status if r.message else None,
                    "processed_at": _ts(r.processed_at),
                }
                for r in recipients.order_by("pk")
            ],
        }

    def object_refs(self, customer: Any):
        for pk in CampaignRecipient.objects.filter(customer=customer).values_list("pk", flat=True):
            yield ("isp.campaignrecipient", str(pk))

    def erase(self, customer: Any, report: ErasureReport, *, request: Any = None) -> None:
        for model, label in (
            (OutageConversation, "isp.outageconversation"),
            (OutageReport, "isp.outagereport"),
            (CampaignRecipient, "isp.campaignrecipient"),
        ):
            report.add("deleted", label, model.objects.filter(customer=customer).delete()[0])

    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        return {
            "outage_reports": batched_delete(
                OutageReport.objects.filter(
                    reported_at__lt=retention_cutoff("outage_reports", now)
                ),
                batch_size=batch_size,
                dry_run=dry_run,
            ),
            "outage_links": batched_delete(
                OutageConversation.objects.filter(
                    outage__resolved_at__lt=retention_cutoff("outage_links", now)
                ),
                batch_size=batch_size,
                dry_run=dry_run,
            ),
            "campaign_recipients": batched_delete(
                CampaignRecipient.objects.filter(
                    campaign__finished_at__lt=retention_cutoff("campaign_recipients", now)
                ),
                batch_size=batch_size,
                dry_run=dry_run,
            ),
        }


class ContractImportsProvider(Provider):
    """The customer-base CSV a supervisor uploads, between the upload and the end of its import."""

    key = "isp.contract_imports"
    label = _lazy("Arquivos da base de clientes enviados para importação")
    purpose = _lazy(
        "Importar a base de clientes exportada do ERP (titular, CPF, telefones, contrato, plano, "
        "região) para identificar clientes, avisar de falhas e enviar campanhas"
    )
    fields = {"isp.contractimport": {"file": Category.IDENTIFICATION}}
    exempt = {
        "isp.contractimport": {
            "report": "Relatório das linhas rejeitadas: número da linha, coluna e motivo, sem "
            "nenhum valor do arquivo.",
            "error": "Motivo da recusa do arquivo inteiro (cabeçalho, codificação, arquivo "
            "ilegível): cita só nomes de colunas reconhecidas e números de linha, nunca valores.",
        }
    }
    legal_basis = (LegalBasis.CONTRACT,)
    retention = (
        Retention(
            "contract_import_files",
            _lazy("após o envio (cada importação apaga o seu arquivo ao terminar)"),
        ),
        Retention("contract_imports", _lazy("após a importação (contagens e relatório)")),
    )
    recipients = ()
    order = 11

    # The file is not linked to a data subject until it is imported: its rows become contracts
    # (exported and erased by ``isp.contracts``); the file itself lives minutes.

    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        leftover = ContractImport.objects.exclude(file="").filter(
            created_at__lt=retention_cutoff("contract_import_files", now)
        )
        old_runs = ContractImport.objects.filter(
            created_at__lt=retention_cutoff("contract_imports", now)
        )
        if dry_run:
            return {"contract_import_files": leftover.count(), "contract_imports": old_runs.count()}
        files = 0
        for run in leftover.iterator():
            run.file.storage.delete(run.file.name)
            ContractImport.objects.filter(pk=run.pk).update(
                file="",
                status=ContractImport.Status.FAILED,
                error=_("O arquivo expirou antes de ser importado: envie-o de novo."),
            )
            files += 1
        runs = 0
        for run in old_runs.iterator():
            for stored in (run.file, run.report):
                if stored:
                    stored.storage.delete(stored.name)
            run.delete()
            runs += 1
        return {"contract_import_files": files, "contract_imports": runs}


def register_all() -> None:
    registry.register(ContractsProvider())
    registry.register(OutagesCampaignsProvider())
    registry.register(ContractImportsProvider())
