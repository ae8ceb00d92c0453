"""System checks of the observability settings."""

from __future__ import annotations


def test_a_multiprocess_directory_that_does_not_exist_fails_the_system_check(monkeypatch, tmp_path):
    from ispsupport.checks import check_metrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    assert [error.id for error in check_metrics()] == ["ispsupport.E120"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert check_metrics() == []
