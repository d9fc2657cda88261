"""The restrict list in a real SQLite database: edited with one clear line for bad input, read
into the routing table, and honoured after the dialplan: the call record is marked, and a
restricted call is never transcribed, analysed or sent to an ad platform."""

import json
import time

import pytest
from sqlalchemy import select

from appliance import admin
from appliance.calls.model import CallStarted
from appliance.calls.outcome import CallOutcome
from appliance.calls.store import CallStore
from appliance.conversions import store as conversions
from appliance.db.engine import session_factory
from appliance.db.models import (
    AuditEntry,
    Call,
    ConversionRule,
    Delivery,
    Destination,
    Job,
    RestrictedNumber,
)
from appliance.privacy import restricted_store
from appliance.transcription import service
from tests.hostile import STRINGS
from tests.made_once import migrated_sqlite

CALLER = "+13125550111"


@pytest.fixture
def world(tmp_path):
    engine = migrated_sqlite(tmp_path / "restrict.db")
    sessions = session_factory(engine)
    with sessions.begin() as session:
        agency = admin.default_account(session)
        a = admin.add_account(session, "Client A", agency.id).id
        b = admin.add_account(session, "Client B", agency.id).id
        admin.add_number(session, admin.NumberRequest("+12025550123"), a)
        restricted_store.add(session, a, "(312) 555-0111", "cli:test")
    yield sessions, a, b
    engine.dispose()


def started(linkedid: str, caller: str) -> CallStarted:
    return CallStarted(
        linkedid,
        "0" * 31 + linkedid[-1],
        "12025550123",
        caller,
        "Pat",
        time.time(),
        None,
        None,
        False,
    )


def outcome(linkedid: str, caller: str, **fields) -> CallOutcome:
    now = time.time()
    return CallOutcome(
        linkedid,
        "12025550123",
        caller,
        "Pat",
        now - 60,
        now,
        now - 50,
        now - 59,
        "answered",
        **fields,
    )


def test_the_list_holds_e164_numbers_per_account(world):
    sessions, a, b = world
    with sessions.begin() as session:
        assert restricted_store.add(session, b, "0013125550111", "cli:test") == CALLER
    with sessions() as session:
        rows = restricted_store.listed(session)
        assert [(r.account_id, r.e164) for r in rows] == [(a, CALLER), (b, CALLER)]
        assert [r.e164 for r in restricted_store.listed(session, [b])] == [CALLER]


def test_a_number_listed_twice_or_missing_is_one_clear_line(world):
    sessions, a, _ = world
    with pytest.raises(admin.AdminError, match="already restricted"), sessions.begin() as s:
        restricted_store.add(s, a, "312-555-0111", "cli:test")
    with pytest.raises(admin.AdminError, match="is not restricted"), sessions.begin() as s:
        restricted_store.remove(s, a, "+13125550112", "cli:test")
    with pytest.raises(admin.AdminError, match="no account"), sessions.begin() as s:
        restricted_store.add(s, 999, CALLER, "cli:test")


@pytest.mark.parametrize("raw", [s for s in STRINGS if not any(c.isdigit() for c in s)])
def test_hostile_numbers_are_refused_with_one_line_and_nothing_lost(world, raw):
    sessions, a, _ = world
    with pytest.raises(admin.AdminError) as refused, sessions.begin() as session:
        restricted_store.add(session, a, raw, "cli:test")
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 120
    with sessions() as session:
        assert [r.e164 for r in restricted_store.listed(session)] == [CALLER]


def test_the_audit_says_who_changed_which_list_but_not_the_number(world):
    sessions, a, _ = world
    with sessions.begin() as session:
        restricted_store.remove(session, a, CALLER, "cli:test")
    with sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action.like("restrict.%")))
        seen = [(e.action, e.subject, e.account_id) for e in entries]
        assert seen == [("restrict.add", str(a), a), ("restrict.remove", str(a), a)]
        text = " ".join(str(v) for e in entries for v in vars(e).values())
        assert "5550111" not in text
        assert session.scalars(select(RestrictedNumber)).all() == []


def test_the_routing_table_carries_the_list(world):
    sessions, a, _ = world
    assert CallStore(sessions).routing_table().restricted == {a: (CALLER,)}


@pytest.mark.parametrize(
    ("caller", "restricted"),
    [
        ("13125550111", True),
        ("+13125550111", True),
        ("3125550111", True),
        ("13125550112", False),
        ("", False),
        ("${SHELL(id)}", False),
    ],
)
def test_a_call_from_a_listed_caller_is_marked_when_it_starts(world, caller, restricted):
    sessions, _, _ = world
    calls = CallStore(sessions)
    ((call_id, _),) = calls.write([started("1.1", caller)])
    with sessions() as session:
        assert session.get(Call, call_id).restricted is restricted


def test_another_accounts_list_does_not_restrict_the_caller(world):
    sessions, a, b = world
    with sessions.begin() as session:
        restricted_store.remove(session, a, CALLER, "cli:test")
        restricted_store.add(session, b, CALLER, "cli:test")
    ((call_id, _),) = CallStore(sessions).write([started("1.1", CALLER)])
    with sessions() as session:
        assert session.get(Call, call_id).restricted is False


def test_the_consent_evidence_is_stored_with_the_call(world):
    sessions, _, _ = world
    heard = time.time() - 58
    ended = outcome(
        "1.2",
        "13125550112",
        consent_announced=True,
        consent_prompt="custom/notice",
        consent_at=heard,
    )
    ((call_id, _),) = CallStore(sessions).write([ended])
    with sessions() as session:
        call = session.get(Call, call_id)
        assert (call.consent_prompt, call.consent_announced) == ("custom/notice", True)
        assert abs(call.consent_at.timestamp() - heard) < 0.01


def test_a_call_learnt_from_the_cdr_is_marked_too(world):
    sessions, _, _ = world
    ((call_id, _),) = CallStore(sessions).write([outcome("1.8", CALLER, reconciled=True)])
    with sessions() as session:
        call = session.get(Call, call_id)
        assert (call.via, call.restricted) == ("reconciled", True)


def _finished(sessions, caller: str, linkedid: str) -> str:
    ((call_id, _),) = CallStore(sessions).write([outcome(linkedid, caller)])
    return call_id


def test_a_restricted_call_is_never_queued_for_transcription(world):
    sessions, _, _ = world
    queuer = service.Queuer(config=None, every=1e9)  # type: ignore[arg-type]
    queuer._checked, queuer._on = time.time(), True  # transcription on
    restricted, other = (
        _finished(sessions, CALLER, "1.3"),
        _finished(sessions, "13125550112", "1.4"),
    )
    with sessions.begin() as session:
        queuer(session, restricted, time.time())
        queuer(session, other, time.time())
    with sessions() as session:
        keys = session.scalars(select(Job.key).where(Job.kind == service.KIND)).all()
        assert keys == [other]


def test_ad_platforms_never_get_a_restricted_call_and_webhooks_are_told(world):
    sessions, a, _ = world
    with sessions.begin() as session:
        for kind in ("webhook", "meta"):
            session.add(
                Destination(
                    account_id=a,
                    name=kind,
                    kind=kind,
                    url="https://x.test/",
                    events="conversion.created call.ended",
                )
            )
        session.add(ConversionRule(account_id=a, name="Any call", applies_to="call"))
    seen = {}
    for caller, linkedid in ((CALLER, "1.6"), ("13125550112", "1.7")):
        call_id = _finished(sessions, caller, linkedid)
        with sessions.begin() as session:
            conversions.on_call(session, call_id)
            rows = session.execute(
                select(Destination.kind, Delivery.event, Delivery.payload).join(
                    Destination, Destination.id == Delivery.destination_id
                )
            ).all()
            session.execute(Delivery.__table__.delete())
        seen[caller] = rows
    assert sorted((k, e) for k, e, _ in seen[CALLER]) == [
        ("webhook", "call.ended"),
        ("webhook", "conversion.created"),
    ]
    finished = next(json.loads(p) for _, e, p in seen[CALLER] if e == "call.ended")
    assert finished["data"]["restricted"] is True
    assert ("meta", "conversion.created") in [(k, e) for k, e, _ in seen["13125550112"]]
