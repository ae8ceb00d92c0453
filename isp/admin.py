"""Admin for the ISP's data: the demo ERP's contracts, bills, visit windows and visits, and the
copies of a real ERP's contracts. Supervisors read (and manage visit windows); admins edit.

Name, CPF, address and phones are encrypted: they cannot be searched with SQL, so a search
term of 11 digits is matched against the CPF blind index, and one that is a phone number
against the phone blind index.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from compliance.admin_mixins import AccessLoggedAdminMixin
from conversations.phones import normalize_phone
from isp.cpf import cpf_digits, is_valid_cpf, mask_cpf
from isp.formatting import brl
from isp.models import (
    Contract,
    ContractPhone,
    Invoice,
    ServiceOrder,
    TrustUnlock,
    VisitWindow,
    cpf_index,
    phone_index,
)


class ContractPhoneInline(admin.TabularInline):
    model = ContractPhone
    extra = 0
    fields = ("phone",)


class InvoiceInline(admin.TabularInline):
    model = Invoice
    extra = 0
    fields = ("number", "reference_month", "due_date", "amount", "status", "paid_at")
    show_change_link = True


@admin.register(Contract)
class ContractAdmin(AccessLoggedAdminMixin, admin.ModelAdmin):
    list_display = (
        "ref",
        "plan_name",
        "status",
        "city",
        "neighbourhood",
        "pop",
        "olt",
        "box",
        "connection",
        "source",
    )
    list_filter = ("status", "source", "connection", "city", "plan_name")
    search_fields = ("ref", "city", "neighbourhood", "pop", "olt", "box", "plan_name")
    readonly_fields = ("masked_cpf", "created_at", "updated_at", "synced_at")
    inlines = [ContractPhoneInline, InvoiceInline]
    # Holder, CPF, address, phones: opening a contract is in the personal-data access log
    # (the contract is not tied to one customer row, so the row names the contract).
    access_log_object_type = "contract"
    fieldsets = (
        (None, {"fields": ("ref", "source", "status", "holder_name", "cpf", "masked_cpf")}),
        (
            _("Plano"),
            {"fields": ("plan_name", "download_mbps", "upload_mbps", "monthly_price")},
        ),
        (
            _("Endereço e rede"),
            {"fields": ("address", "city", "neighbourhood", "pop", "olt", "box")},
        ),
        (
            _("Conexão"),
            {"fields": ("connection", "connection_since", "trust_unlocked_until")},
        ),
        (_("Registro"), {"fields": ("created_at", "updated_at", "synced_at")}),
    )

    @admin.display(description=_("CPF (mascarado)"))
    def masked_cpf(self, obj: Contract) -> str:
        return mask_cpf(obj.cpf or "")

    def get_search_results(self, request, queryset, search_term):
        term = (search_term or "").strip()
        digits = cpf_digits(term)
        if len(digits) == 11 and is_valid_cpf(digits):
            return queryset.filter(cpf_index=cpf_index(digits)), False
        phone = normalize_phone(term, national=True) if len(digits) >= 10 else None
        if phone:
            by_phone = queryset.filter(phones__phone_index=phone_index(phone)).distinct()
            if by_phone.exists():
                return by_phone, True
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request, obj, form, change):
        # The blind index follows the CPF typed in the form (never one without the other).
        obj.set_cpf(cpf_digits(obj.cpf or ""))
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for instance in instances:
            if isinstance(instance, ContractPhone):
                phone = normalize_phone(instance.phone, national=True) or instance.phone
                instance.phone = phone
                instance.phone_index = phone_index(phone)
            instance.save()
        for deleted in formset.deleted_objects:
            deleted.delete()
        formset.save_m2m()


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ("number", "contract", "reference_month", "due_date", "amount_brl", "status")
    list_filter = ("status", "due_date")
    search_fields = ("number", "contract__ref")
    list_select_related = ("contract",)
    autocomplete_fields = ("contract",)

    @admin.display(description=_("valor"), ordering="amount")
    def amount_brl(self, obj: Invoice) -> str:
        return brl(obj.amount)


@admin.register(VisitWindow)
class VisitWindowAdmin(admin.ModelAdmin):
    list_display = ("__str__", "city", "capacity", "booked")
    list_filter = ("city",)
    date_hierarchy = "starts_at"


@admin.register(ServiceOrder)
class ServiceOrderAdmin(admin.ModelAdmin):
    list_display = ("number", "contract", "window", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("number", "contract__ref")
    list_select_related = ("contract", "window")
    readonly_fields = ("number", "contract", "window", "reason", "created_at")

    def has_add_permission(self, request) -> bool:
        return False  # booked by the bot (or by the ERP itself), never typed in


@admin.register(TrustUnlock)
class TrustUnlockAdmin(admin.ModelAdmin):
    list_display = ("contract_ref", "adapter", "granted_at", "until")
    search_fields = ("contract_ref",)
    readonly_fields = ("contract_ref", "adapter", "conversation", "granted_at", "until")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# Outages, campaigns and the customer-base import live in their own modules; importing them
# registers their admins.
from isp import campaign_admin, import_admin, outage_admin  # noqa: E402, F401
