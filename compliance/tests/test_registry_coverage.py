"""Every personal-looking field of every installed model is covered by a privacy provider.

A field looks personal when its name matches ``registry.PERSONAL_FIELD_PATTERNS`` or it is of
an encrypted type. Project apps must declare it in a provider (``fields``) or explain why it is
not personal (``exempt``); Django's and third-party apps' models are judged by
``registry.FOREIGN_MODEL_ALLOWLIST`` unless a provider covers them.
"""

from __future__ import annotations

from django.apps import apps

from compliance import registry

PROJECT_APPS = {"accounts", "conversations", "whatsapp", "bot", "isp", "compliance"}


def _concrete_fields(model):
    for field in model._meta.concrete_fields:
        if field.primary_key or field.is_relation:
            continue
        yield field


def _uncovered() -> list[str]:
    covered = registry.covered_fields()
    exempt = registry.exempt_fields()
    problems = []
    for model in apps.get_models():
        label = model._meta.label_lower
        app_label = model._meta.app_label
        candidates = [
            f.name
            for f in _concrete_fields(model)
            if registry.looks_personal(f.name, f) or registry.is_encrypted_field(f)
        ]
        if not candidates:
            continue
        if app_label not in PROJECT_APPS:
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
