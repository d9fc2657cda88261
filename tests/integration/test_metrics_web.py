"""/metrics over the real application and a real database: who may scrape it (the agency's
owners and admins, by token or session), everyone else refused and audited, and what it shows
(box-wide totals, never a caller's or a tenant's data)."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from appliance import admin
from appliance.db.models import AuditEntry, User
from appliance.jobs import queue as jobs_queue
from tests.web_world import Browser


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def families(text: str) -> dict[str, dict[tuple, float]]:
    """sample name -> {sorted labels: value}, through Prometheus' own parser."""
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def scrape(client, headers: dict) -> dict[str, dict[tuple, float]]:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response.headers["Cache-Control"] == "no-store"
    return families(await response.text())


def refused_metrics(world) -> list[AuditEntry]:
    with world.sessions() as session:
        return [
            e
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.action == "request.refused")
            )
            if " /metrics: " in (e.detail or "")
        ]


async def test_an_owner_token_reads_box_wide_totals(world, client):
    found = await scrape(client, bearer(world.tokens["owner"]))
    calls = found["appliance_calls_total"]
    assert calls[(("disposition", "answered"),)] == 3  # both clients' and the agency's
    assert calls[(("disposition", "busy"),)] == 0
    assert found["appliance_database_up"][()] == 1
    world.add_call("b", disposition="busy")
    world.add_call(None, disposition="answered")
    with world.sessions.begin() as session:
        jobs_queue.enqueue(session, "transcribe", "c" * 32)
    found = await scrape(client, bearer(world.tokens["owner"]))
    calls = found["appliance_calls_total"]
    assert calls[(("disposition", "answered"),)] == 4
    assert calls[(("disposition", "busy"),)] == 1
    jobs = found["appliance_jobs"]
    assert jobs[(("kind", "transcribe"), ("state", "queued"))] == 1
    assert jobs[(("kind", "transcribe"), ("state", "parked"))] == 0


async def test_no_label_carries_a_caller_or_a_tenant(world, client):
    world.add_call("a", caller_name='<script>"Eve"</script>', caller_number="+12025550177")
    response = await client.get("/metrics", headers=bearer(world.tokens["owner"]))
    text = await response.text()
    for personal in ("2025550177", "2025550100", "Eve", "Caller a", "Client A", "Google Ads"):
        assert personal not in text
    allowed = {"disposition", "kind", "state", "reason", "le", "volume"}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("appliance_") and family.documentation
        for sample in family.samples:
            assert set(sample.labels) <= allowed, sample


async def test_a_signed_in_owner_may_scrape_and_a_stranger_gets_no_sign_in_page(world, client):
    owner = Browser(client)
    await owner.sign_in("owner")
    response, body = await owner.get("/metrics")
    assert response.status == 200 and "appliance_calls_total" in body
    stranger = await client.get("/metrics", allow_redirects=False)
    assert stranger.status == 401 and stranger.headers["WWW-Authenticate"] == "Bearer"
    assert (await stranger.json())["error"]["code"] == "unauthenticated"
    client_user = Browser(client)
    await client_user.sign_in("alice")
    response, body = await client_user.get("/metrics")
    assert response.status == 403 and "appliance_" not in body


@pytest.mark.parametrize("username", ["manager", "analyst", "alice", "viewer-a", "viewer-b"])
async def test_only_owners_and_admins_of_the_agency_may_scrape(world, client, username):
    # every one of these tokens carries every scope, metrics:read included: the role decides
    response = await client.get("/metrics", headers=bearer(world.tokens[username]))
    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "forbidden" and "metrics:read" in error["message"]
    (entry,) = refused_metrics(world)
    assert entry.actor == f"user:{username}" and entry.detail.startswith("403 GET /metrics")


async def test_a_client_user_made_admin_behind_the_appliances_back_sees_nothing(world, client):
    with world.sessions.begin() as session:  # the CLI and the pages refuse this role here
        session.execute(update(User).where(User.username == "alice").values(role="admin"))
    response = await client.get("/metrics", headers=bearer(world.tokens["alice"]))
    assert response.status == 403
    assert "appliance_" not in await response.text()


async def test_a_token_without_the_scope_is_refused(world, client):
    with world.sessions.begin() as session:
        _, narrow = admin.add_api_key(session, "owner", "test", ["calls:read", "config:read"])
    response = await client.get("/metrics", headers=bearer(narrow))
    assert response.status == 403
    assert "metrics:read" in (await response.json())["error"]["message"]


async def test_forged_expired_and_revoked_tokens_are_refused_and_audited(world, client):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with world.sessions.begin() as session:
        key, expired = admin.add_api_key(session, "owner", "test", ["metrics:read"])
        key.expires_at = past
        key, revoked = admin.add_api_key(session, "owner", "test", ["metrics:read"])
        key.revoked_at = past
    attempts = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer apk_forged"},
        {"Authorization": "Basic b3duZXI6cGFzc3dvcmQ="},
        {"Authorization": "Bearer " + world.tokens["owner"][:-1]},
        {"Authorization": "Bearer " + "x" * 5000},
        bearer(expired),
        bearer(revoked),
    ]
    for headers in attempts:
        response = await client.get("/metrics", headers=headers, allow_redirects=False)
        assert response.status == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "appliance_" not in await response.text()
    refused = refused_metrics(world)
    assert len(refused) == len(attempts)
    assert {e.actor for e in refused} == {"anonymous"}
    assert all(e.detail.startswith("401 GET /metrics") for e in refused)
