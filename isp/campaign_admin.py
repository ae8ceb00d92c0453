"""Admin for template campaigns: the form, progress counts and the actions.

A campaign is edited while it is a draft; "Agendar envio", "Pausar", "Retomar" and "Cancelar"
call ``isp.campaigns`` services. The list and the page show progress from one aggregate query
over the recipients' message statuses (refresh the page to follow a running campaign).
Imported by ``isp/admin.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from isp import bulk, campaigns
from isp.models import Campaign, CampaignRecipient, Contract
from isp.selectors import region_tags


def _template_choices() -> list[tuple[str, str]]:
    from conversations import hooks

    return [
        (f"{t.name}|{t.language}", f"{t.name} ({t.language}, {t.category or '—'})")
        for t in hooks.approved_templates()
    ]


class CampaignForm(forms.ModelForm):
    """Pick lists for the template and the segment; parameters one per line."""

    template = forms.ChoiceField(label=_("modelo aprovado"), choices=())
    parameters_text = forms.CharField(
        label=_("parâmetros do modelo"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Um por linha, na ordem {{1}}, {{2}}… Os mesmos para todos."),
    )
    plans_choice = forms.MultipleChoiceField(
        label=_("planos"), required=False, widget=forms.CheckboxSelectMultiple
    )
    cities_choice = forms.MultipleChoiceField(
        label=_("cidades"), required=False, widget=forms.CheckboxSelectMultiple
    )
    statuses_choice = forms.MultipleChoiceField(
        label=_("situações do contrato"),
        required=False,
        choices=Contract.Status.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Nenhuma marcada: ativos e bloqueados."),
    )

    class Meta:
        model = Campaign
        fields = [
            "title",
            "purpose",
            "starts_at",
            "region_city",
            "region_neighbourhood",
            "region_pop",
            "region_olt",
            "region_box",
            "outage",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = _template_choices()
        tags = region_tags()
        plans = Contract.objects.order_by("plan_name").values_list("plan_name", flat=True)
        self.fields["plans_choice"].choices = [(p, p) for p in plans.distinct()]
        self.fields["cities_choice"].choices = [(c, c) for c in tags["city"]]
        instance = self.instance
        if instance.pk:
            self.initial["template"] = f"{instance.template_name}|{instance.template_language}"
            self.initial["parameters_text"] = "\n".join(instance.parameters or [])
            self.initial["plans_choice"] = instance.plans
            self.initial["cities_choice"] = instance.cities
            self.initial["statuses_choice"] = instance.contract_statuses

    def clean(self):
        data = super().clean()
        name, _sep, language = (data.get("template") or "").partition("|")
        parameters = [
            line.strip()
            for line in (data.get("parameters_text") or "").splitlines()
            if line.strip()
        ]
        if name:
            problem = campaigns.campaign_template_problem(
                purpose=data.get("purpose", ""),
                template_name=name,
                template_language=language,
                parameters=parameters,
            )
            if problem:
                self.add_error("template", problem)
        segment = any(
            data.get(f)
            for f in (
                "plans_choice",
                "cities_choice",
                "statuses_choice",
                "region_city",
                "region_neighbourhood",
                "region_pop",
                "region_olt",
                "region_box",
            )
        )
        if data.get("outage") and segment:
            self.add_error(
                "outage",
                _("Uma campanha aos clientes de uma falha não combina com outros critérios."),
            )
        self.cleaned_template = (name, language)
        self.cleaned_parameters = parameters
        return data

    def save(self, commit=True):
        obj = super().save(commit=False)
        obj.template_name, obj.template_language = self.cleaned_template
        obj.parameters = self.cleaned_parameters
        obj.plans = list(self.cleaned_data.get("plans_choice") or [])
        obj.cities = list(self.cleaned_data.get("cities_choice") or [])
        obj.contract_statuses = list(self.cleaned_data.get("statuses_choice") or [])
        template = bulk.approved_template(obj.template_name, obj.template_language)
        obj.template_body = template.body_text if template else ""
        if commit:
            obj.save()
        return obj


PROGRESS_FIELDS = (
    "progress_total",
    "progress_queued",
    "progress_sent",
    "progress_delivered",
    "progress_read",
    "progress_failed",
    "progress_skipped",
)


def _count(name: str, label) -> Callable:
    @admin.display(description=label, ordering=name)
    def display(self, obj: Campaign) -> int:
        value = getattr(obj, name, None)
        if value is None:  # the change page: one aggregate query for this campaign
            progress = campaigns.campaign_progress(campaign=obj)
            return getattr(progress, name[2:])
        return value

    return display


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = (
        "title",
        "purpose",
        "status",
        "starts_at",
        *PROGRESS_FIELDS,
    )
    list_filter = ("status", "purpose")
    search_fields = ("title", "template_name")
    actions = ["schedule", "pause", "resume", "cancel"]
    autocomplete_fields = ()
    raw_id_fields = ("outage",)

    progress_total = _count("n_total", _("destinatários"))
    progress_queued = _count("n_queued", _("na fila"))
    progress_sent = _count("n_sent", _("enviadas"))
    progress_delivered = _count("n_delivered", _("entregues"))
    progress_read = _count("n_read", _("lidas"))
    progress_failed = _count("n_failed", _("falharam"))
    progress_skipped = _count("n_skipped", _("não enviadas"))

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            return campaigns.campaigns_with_progress(qs)
        return qs

    def get_fieldsets(self, request, obj=None):
        main = [
            "title",
            "purpose",
            "template",
            "parameters_text",
            "starts_at",
        ]
        segment = [
            "plans_choice",
            "cities_choice",
            "statuses_choice",
            "region_city",
            "region_neighbourhood",
            "region_pop",
            "region_olt",
            "region_box",
            "outage",
        ]
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            main = ["title", "purpose", "template_name", "template_language", "template_body"]
            main += ["parameters", "starts_at"]
            segment = ["plans", "cities", "contract_statuses", "region_city"]
            segment += ["region_neighbourhood", "region_pop", "region_olt", "region_box", "outage"]
        return (
            (None, {"fields": main}),
            (_("Segmento (critérios combinados)"), {"fields": segment}),
            (
                _("Andamento"),
                {
                    "fields": (
                        "status",
                        "started_at",
                        "finished_at",
                        "unreachable",
                        *PROGRESS_FIELDS,
                        "skips",
                    )
                },
            ),
        )

    def get_readonly_fields(self, request, obj=None):
        progress = ["status", "started_at", "finished_at", "unreachable", *PROGRESS_FIELDS, "skips"]
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            # Once scheduled, what was promised to be sent is a record.
            return [
                "title",
                "purpose",
                "template_name",
                "template_language",
                "template_body",
                "parameters",
                "starts_at",
                "plans",
                "cities",
                "contract_statuses",
                "region_city",
                "region_neighbourhood",
                "region_pop",
                "region_olt",
                "region_box",
                "outage",
                *progress,
            ]
        return progress

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            kwargs["form"] = forms.ModelForm
            kwargs["fields"] = []
        return super().get_form(request, obj, change=change, **kwargs)

    @admin.display(description=_("não enviadas, por motivo"))
    def skips(self, obj: Campaign) -> str:
        labels = dict(CampaignRecipient.Skip.choices)
        rows = campaigns.campaign_skips(campaign=obj) if obj.pk else {}
        return " · ".join(f"{labels.get(k, k)}: {n}" for k, n in sorted(rows.items())) or "—"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            return False  # only drafts; a campaign that sent anything is a record
        return super().has_delete_permission(request, obj)

    def _each(self, request, queryset, service, done_message) -> None:
        done = 0
        for campaign in queryset:
            try:
                service(campaign=campaign, user=request.user)
            except campaigns.CampaignError as exc:
                self.message_user(request, f"{campaign}: {exc.message}", messages.WARNING)
                continue
            done += 1
        if done:
            self.message_user(request, done_message % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Agendar envio"), permissions=["change"])
    def schedule(self, request, queryset):
        self._each(
            request, queryset, campaigns.campaign_schedule, _("%(n)d campanha(s) agendada(s).")
        )

    @admin.action(description=_("Pausar"), permissions=["change"])
    def pause(self, request, queryset):
        self._each(request, queryset, campaigns.campaign_pause, _("%(n)d campanha(s) pausada(s)."))

    @admin.action(description=_("Retomar"), permissions=["change"])
    def resume(self, request, queryset):
        self._each(
            request, queryset, campaigns.campaign_resume, _("%(n)d campanha(s) retomada(s).")
        )

    @admin.action(description=_("Cancelar"), permissions=["change"])
    def cancel(self, request, queryset):
        self._each(
            request, queryset, campaigns.campaign_cancel, _("%(n)d campanha(s) cancelada(s).")
        )


@admin.register(CampaignRecipient)
class CampaignRecipientAdmin(admin.ModelAdmin):
    """Read-only: listed when the campaign starts, updated by the sending task."""

    list_display = (
        "campaign",
        "customer",
        "contract_ref",
        "state",
        "skip_reason",
        "delivery",
        "processed_at",
    )
    list_filter = ("state", "skip_reason", "campaign")
    list_select_related = ("campaign", "customer", "message")
    search_fields = ("contract_ref",)
    readonly_fields = (
        "campaign",
        "customer",
        "contract_ref",
        "state",
        "skip_reason",
        "message",
        "created_at",
        "processed_at",
    )

    @admin.display(description=_("entrega"))
    def delivery(self, obj: CampaignRecipient) -> str:
        return obj.message.get_status_display() if obj.message else "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
