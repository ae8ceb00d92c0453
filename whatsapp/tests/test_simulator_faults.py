"""The Graph simulator's fault control over HTTP (``/simulator/api/faults``), with the real client.

Another process (the local fleet's Graph simulator, driven by tests/fleet/test_faults.py)
scripts Meta's failures through this API instead of ``SIM.push_*``.
"""

from __future__ import annotations

import pytest
import requests

from whatsapp.client import ErrorKind, GraphError, get_client
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db

PNID = "100000000000001"
TEXT = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "+5511987654321",
    "type": "text",
    "text": {"preview_url": False, "body": "Sua fatura foi enviada."},
}


def _faults(loopback_url: str, method: str = "GET", fault: dict | None = None):
    return requests.request(method, f"{loopback_url}/simulator/api/faults", json=fault, timeout=10)


def test_the_next_sends_answer_what_was_scripted_then_meta_accepts_again(graph, loopback_url):
    response = _faults(loopback_url, "POST", {"kind": "http", "status": 500, "times": 2})
    assert response.status_code == 200
    assert [f["status"] for f in response.json()["queued"]] == [500, 500]

    for _ in range(2):
        with pytest.raises(GraphError) as caught:
            get_client().send(PNID, TEXT)
        assert caught.value.http_status == 500 and caught.value.retryable
    assert get_client().send(PNID, TEXT).startswith("wamid.")

    answered = _faults(loopback_url).json()["answered"]["messages"]
    assert answered == {"500": 2, "200": 1}
    assert graph.sent() == [TEXT]


def test_a_window_refuses_every_send_with_metas_code_and_retry_after_until_cleared(
    graph, loopback_url, settings
):
    fault = {"kind": "error", "code": 130429, "status": 429, "retry_after": 3, "for_seconds": 60}
    window = _faults(loopback_url, "POST", fault).json()["windows"]
    assert [(w["code"], w["status"]) for w in window] == [(130429, 429)]

    url = f"{settings.WHATSAPP_API_BASE_URL}/{settings.WHATSAPP_API_VERSION}/{PNID}/messages"
    headers = {"Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}"}
    for _ in range(3):
        raw = requests.post(url, json=TEXT, headers=headers, timeout=10)
        assert raw.status_code == 429
        assert raw.headers["Retry-After"] == "3"
        assert raw.json()["error"]["code"] == 130429
    with pytest.raises(GraphError) as caught:
        get_client().send(PNID, TEXT)
    assert caught.value.kind == ErrorKind.RETRYABLE

    assert _faults(loopback_url, "DELETE").json()["windows"] == []
    assert get_client().send(PNID, TEXT).startswith("wamid.")
    assert _faults(loopback_url).json()["answered"]["messages"] == {"429": 4, "200": 1}


def test_the_latest_window_wins_so_failure_modes_follow_each_other_without_a_gap(
    graph, loopback_url
):
    _faults(loopback_url, "POST", {"kind": "http", "status": 500, "for_seconds": 60})
    _faults(loopback_url, "POST", {"kind": "http", "status": 503, "for_seconds": 60})

    with pytest.raises(GraphError) as caught:
        get_client().send(PNID, TEXT)
    assert caught.value.http_status == 503
    assert len(_faults(loopback_url).json()["windows"]) == 2


def test_a_held_send_is_handled_after_the_hold_and_counted(graph, loopback_url):
    _faults(loopback_url, "POST", {"kind": "hold", "seconds": 0.3})

    assert get_client().send(PNID, TEXT).startswith("wamid.")  # slow, then accepted
    state = _faults(loopback_url).json()
    assert (state["held"], state["held_total"]) == (0, 1)
    assert graph.sent() == [TEXT]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"kind": "explode"}, "kind must be one of"),
        ({"kind": "http"}, "status between 400 and 599"),
        ({"kind": "timeout"}, "needs seconds > 0"),
        ({"kind": "http", "status": 500, "times": 0}, "times: 1 to 10000"),
        ({"kind": "http", "status": 500, "endpoint": "nowhere"}, "endpoint must be one of"),
        ({"kind": "error", "code": "abc"}, "numbers"),
    ],
)
def test_a_fault_that_makes_no_sense_is_refused_with_the_reason(graph, loopback_url, fault, reason):
    response = _faults(loopback_url, "POST", fault)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert _faults(loopback_url).json()["queued"] == []
