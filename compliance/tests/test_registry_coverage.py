"""Every personal-looking field of every installed model is covered by a privacy provider.

A field must be classified when its name matches ``registry.PERSONAL_FIELD_PATTERNS``, when it
is of an encrypted type, or — on the project's own models — when it is free text (a
``TextField`` or ``JSONField`` without choices), whatever its name: free text is where
personal data lands unannounced. Project apps must declare it in a provider (``fields``) or
explain why it is not personal (``exempt``); Django's and third-party apps' models are judged
by ``registry.FOREIGN_MODEL_ALLOWLIST`` unless a provider covers them.
"""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import models
from django.test.utils import isolate_apps

from compliance import registry

FREE_TEXT_TYPES = {"TextField", "JSONField"}


def _project_apps() -> set[str]:
    """The apps of this repository (found by their location, so a new app is included)."""
    base = Path(settings.BASE_DIR).resolve()
    found = set()
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(base) and "site-packages" not in path.parts:
            found.add(config.label)
    return found


def _concrete_fields(model):
    for field in model._meta.concrete_fields:
        if field.primary_key or field.is_relation:
            continue
        yield field


def _is_free_text(field) -> bool:
    return field.get_internal_type() in FREE_TEXT_TYPES and not field.choices


def _uncovered(models_to_check=None) -> list[str]:
    covered = registry.covered_fields()
    exempt = registry.exempt_fields()
    project_apps = _project_apps()
    problems = []
    for model in models_to_check if models_to_check is not None else apps.get_models():
        label = model._meta.label_lower
        app_label = model._meta.app_label
        in_project = app_label in project_apps
        candidates = [
            f.name
            for f in _concrete_fields(model)
            if registry.looks_personal(f.name, f)
            or registry.is_encrypted_field(f)
            or (in_project and _is_free_text(f))
        ]
        if not candidates:
            continue
        if not in_project:
            if label in registry.FOREIGN_MODEL_ALLOWLIST:
                continue
            if any(model_label == label for model_label, _ in covered):
                candidates = [
                    n for n in candidates if (label, n) not in covered and (label, n) not in exempt
                ]
                if not candidates:
                    continue
        for name in candidates:
            if (label, name) not in covered and (label, name) not in exempt:
                problems.append(f"{model._meta.label}.{name}")
    return sorted(problems)


def test_every_personal_field_is_covered_by_a_provider():
    problems = _uncovered()
    assert not problems, (
        "Personal-looking fields covered by no privacy provider (declare them in the app's "
        "privacy.py `fields`, or in `exempt` with the reason): " + ", ".join(problems)
    )


def test_declared_fields_exist():
    """A provider must not declare fields that no longer exist (a stale registry lies)."""
    missing = []
    for (label, name), (provider, _cat) in registry.covered_fields().items():
        try:
            model = apps.get_model(label)
        except LookupError:
            missing.append(f"{provider.key}: model {label}")
            continue
        if name not in {f.name for f in model._meta.get_fields()}:
            missing.append(f"{provider.key}: {label}.{name}")
    assert not missing, "Declared personal fields that do not exist: " + ", ".join(missing)


def test_every_provider_states_purpose_basis_and_retention():
    for provider in registry.providers():
        assert provider.purpose, provider.key
        assert provider.legal_basis, provider.key
        for rule in provider.retention:
            assert rule.days > 0, (provider.key, rule.data_class)


def test_coverage_test_catches_a_new_personal_field(monkeypatch):
    """The checker itself: an undeclared personal field on a project model is reported."""
    spec = registry.get("conversations.customer")
    fields = {k: dict(v) for k, v in spec.fields.items()}
    del fields["conversations.customer"]["cpf"]
    monkeypatch.setattr(spec, "fields", fields)
    assert "conversations.Customer.cpf" in _uncovered()


def test_the_project_apps_are_found_without_a_list():
    assert {"accounts", "conversations", "whatsapp", "bot", "isp", "compliance"} <= (
        _project_apps()
    )
    assert not {"auth", "axes", "auditlog", "django_otp"} & _project_apps()


def test_coverage_test_catches_free_text_whatever_its_name():
    """A new model field that holds free text but whose name looks innocent
    ("observacoes", "extra") is reported until a provider declares or exempts it."""
    with isolate_apps("conversations"):

        class Visit(models.Model):  # noqa: DJ008
            observacoes = models.TextField()
            extra = models.JSONField(default=dict)
            kind = models.TextField(choices=[("a", "A")])  # a code, not free text

            class Meta:
                app_label = "conversations"

        assert _uncovered([Visit]) == [
            "conversations.Visit.extra",
            "conversations.Visit.observacoes",
        ]


def test_the_foreign_allowlist_names_only_installed_third_party_models():
    """An allowlist entry for a model that is gone, or for one of our own models, would let a
    future model of that name through unchecked."""
    installed = {m._meta.label_lower for m in apps.get_models()}
    project = _project_apps()
    wrong = [
        label
        for label in registry.FOREIGN_MODEL_ALLOWLIST
        if label not in installed or label.split(".")[0] in project
    ]
    assert not wrong, f"FOREIGN_MODEL_ALLOWLIST entries to remove: {wrong}"
