"""/metrics of the real controller, scraped as Prometheus would while a real call goes through
the real Asterisk and its recording is sealed."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Stack, wait_for

Samples = dict[str, dict[tuple, float]]


@pytest.fixture
def recorded(stack: Stack) -> Stack:
    """A running stack whose number +12025550123 forwards to the SIPp phone, recorded."""
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    stack.appliance(
        "route", "add", "Clinic", "--forward", "+12025550199", "--trunk", "carrier",
        "--record", "always",
    )  # fmt: skip
    stack.appliance("number", "add", "+12025550123", "--route", "Clinic")
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    return stack


def scraper_token(stack: Stack) -> str:
    made = stack.appliance(
        "apikey", "add", "admin", "--scope", "metrics:read", "--name", "prometheus"
    )
    return made.stdout.rsplit(" ", 1)[1].strip()


def scrape(stack: Stack, token: str | None) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(stack.data_dir / "tls" / "cert.pem"))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(
        f"https://127.0.0.1:{stack.http_port}/metrics", headers=headers
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(stack: Stack, token: str) -> Samples:
    status, text = scrape(stack, token)
    assert status == 200, text
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def answered(found: Samples) -> float:
    return found["appliance_calls_total"][(("disposition", "answered"),)]


def test_a_recorded_call_shows_in_the_metrics(recorded: Stack, phone):
    status, text = scrape(recorded, None)
    assert status == 401 and "appliance_" not in text
    status, text = scrape(recorded, recorded.monitor_token)  # config:read: not enough
    assert status == 403 and "metrics:read" in text
    rows = recorded.query("SELECT actor, detail FROM audit_log WHERE action = 'request.refused'")
    refused = [(r["actor"], r["detail"][:16]) for r in rows if "/metrics" in r["detail"]]
    assert refused == [("anonymous", "401 GET /metrics"), ("user:admin", "403 GET /metrics")]

    token = scraper_token(recorded)
    before = samples(recorded, token)
    assert before["appliance_ami_connected"][()] == 1
    assert before["appliance_active_calls"][()] == 0
    assert before["appliance_recordings_sealed_total"][()] == 0
    assert before["appliance_recording_seal_seconds_count"][()] == 0
    assert answered(before) == 0
    for volume in ("data", "recordings", "spool"):
        assert before["appliance_disk_free_bytes"][(("volume", volume),)] > 0
        assert before["appliance_disk_used_bytes"][(("volume", volume),)] > 0

    phone()
    call = recorded.sipp_background("12025550123", talk_ms=8000)
    try:
        wait_for(
            lambda: samples(recorded, token)["appliance_active_calls"][()] == 1,
            timeout=20,
            what="the call in progress to be counted",
        )
        assert call.wait(timeout=60) == 0
    finally:
        if call.poll() is None:
            call.kill()
            call.wait()

    after = wait_for(
        lambda: (
            (found := samples(recorded, token))["appliance_recordings_sealed_total"][()] == 1
            and answered(found) == 1
            and found
        ),
        timeout=30,
        what="the answered call and its sealed recording in the metrics",
    )
    assert recorded.query("SELECT count(*) AS n FROM recordings")[0]["n"] == 1
    assert after["appliance_active_calls"][()] == 0
    seal = after["appliance_recording_seal_seconds_count"][()]
    assert seal == 1 and after["appliance_recording_seal_seconds_bucket"][(("le", "+Inf"),)] == 1
    assert after["appliance_recording_seal_seconds_sum"][()] >= 0
    failed = after["appliance_recordings_failed_total"]
    assert failed[(("reason", "refused"),)] == 0 and failed[(("reason", "error"),)] == 0
