"""The call's lifecycle as webhook events, in a real SQLite database: each event is queued in
the transaction that writes its fact, once per fact however often the fact is replayed, with
the same `id` for the same fact; restricted callers' events go to webhooks only, marked; a
person's erasure finds every one of them; hostile event lists are refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from appliance import admin, events
from appliance.access import the_box
from appliance.calls.model import CallAnswered, CallStarted
from appliance.calls.outcome import CallOutcome
from appliance.calls.store import CallStore
from appliance.calls.writer import CallWriter
from appliance.conversions import admin as destinations
from appliance.conversions import store as conversions
from appliance.db.engine import session_factory
from appliance.db.models import (
    Call,
    ConversionRule,
    Delivery,
    Destination,
    DniSite,
    Lead,
    Recording,
)
from appliance.privacy import restricted_store
from appliance.privacy.person import find
from appliance.privacy.subject import parse
from appliance.recordings import keys
from appliance.recordings.spool_files import raw_name
from appliance.recordings.vault import AUDIO_FORMAT, RecordingVault, SpoolFileRefused
from appliance.secrets import SecretBox
from appliance.transcription import service
from appliance.transcription.words import Word
from tests.hostile import STRINGS
from tests.made_once import migrated_sqlite

CALLER = "+13125550111"
RESTRICTED = "+13125550222"
CALL_FIELDS = {"call_id", "dialled", "caller_number", "caller_name", "first_time", "source",
               "medium", "campaign", "visit_id", "attribution", "restricted"}  # fmt: skip
EVERY = " ".join(conversions.EVENTS)


@pytest.fixture
def world(tmp_path):
    """An account with a tracking number, a webhook and an ad platform subscribed to every
    event they may take (the ad platform's row as an older or hostile database might hold)."""
    engine = migrated_sqlite(tmp_path / "events.db")
    sessions = session_factory(engine)
    with sessions.begin() as session:
        account = admin.add_account(session, "Client", admin.default_account(session).id).id
        admin.add_number(session, admin.NumberRequest("+12025550123"), account)
        restricted_store.add(session, account, RESTRICTED, "cli:test")
        for kind in ("webhook", "meta"):
            session.add(Destination(account_id=account, name=kind, kind=kind,
                                    url="https://x.test/", events=EVERY))  # fmt: skip
    yield sessions, account
    engine.dispose()


def started(linkedid: str, caller: str = CALLER) -> CallStarted:
    return CallStarted(linkedid, f"{int(linkedid.split('.')[1]):032x}", "12025550123", caller,
                       "Pat", time.time() - 60, None, None, False)  # fmt: skip


def outcome(linkedid: str, caller: str = CALLER, answered: bool = True) -> CallOutcome:
    now = time.time()
    return CallOutcome(linkedid, "12025550123", caller, "Pat", now - 60, now,
                       now - 50 if answered else None, now - 59,
                       "answered" if answered else "no_answer")  # fmt: skip


def sent(sessions, name: str | None = None) -> list[tuple[str, dict]]:
    """(destination kind, event) of every delivery queued, oldest first."""
    with sessions() as session:
        rows = session.execute(
            select(Destination.kind, Delivery.event, Delivery.payload)
            .join(Destination, Destination.id == Delivery.destination_id)
            .order_by(Delivery.id)
        ).all()
    found = [(kind, json.loads(payload)) for kind, event, payload in rows]
    assert all(e["event"] == event for (_, e), (_, event, _) in zip(found, rows, strict=True))
    return [(k, e) for k, e in found if name is None or e["event"] == name]


def test_event_call_started_is_queued_with_the_first_record_and_never_again(world):
    sessions, _ = world
    store = CallStore(sessions)
    [(call_id, news)] = store.write([started("1.1")])
    assert news
    assert store.write([started("1.1")]) == [(call_id, False)]  # a replayed route event
    ((kind, event),) = sent(sessions)
    assert kind == "webhook"  # an ad platform never takes a call's events
    assert (event["event"], event["id"]) == ("call.started", f"call-{call_id}-started")
    assert set(event["data"]) == CALL_FIELDS
    assert (event["data"]["call_id"], event["data"]["caller_number"]) == (call_id, CALLER)
    assert event["data"]["dialled"] == "+12025550123" and event["data"]["restricted"] is False
    with sessions() as session:
        moment = session.get(Call, call_id).started_at
    assert event["occurred_at"] == moment.replace(tzinfo=dt.UTC).isoformat()


def test_event_call_started_not_for_a_call_to_no_account(world):
    sessions, _ = world
    store = CallStore(sessions)
    stray = CallStarted("1.9", "9" * 32, "12025550999", CALLER, "", time.time(), None, None, False)
    store.write([stray, CallAnswered("1.9", time.time()), outcome("1.9")])
    assert sent(sessions) == []


def test_event_call_answered_once_when_answered_not_again_at_the_end(world):
    sessions, _ = world
    store = CallStore(sessions)
    call_id = store.write([started("1.2")])[0][0]
    answer = CallAnswered("1.2", time.time() - 50)
    assert store.write([answer]) == [(call_id, True)]
    assert store.write([answer]) == [(call_id, False)]  # replayed
    store.write([outcome("1.2")])
    assert store.write([CallAnswered("1.2", time.time())]) == [(call_id, False)]  # after the end
    ((_, event),) = sent(sessions, "call.answered")
    assert event["id"] == f"call-{call_id}-answered" and set(event["data"]) == CALL_FIELDS
    with sessions() as session:
        assert session.get(Call, call_id).answered_at is not None


def test_event_call_answered_for_a_call_recorded_only_at_its_end(world):
    """Joined late, the call is recorded from its CDR: its start and answer are queued with
    its record, once (the CDR seen again writes nothing)."""
    sessions, _ = world
    store = CallStore(sessions)
    assert store.write([CallAnswered("1.3", time.time())]) == [(None, False)]  # no record yet
    [(call_id, _)] = store.write([outcome("1.3")])
    store.write([outcome("1.3"), started("1.3")])
    names = [e["event"] for _, e in sent(sessions)]
    assert names == ["call.started", "call.answered"]
    assert {e["data"]["call_id"] for _, e in sent(sessions)} == {call_id}


def test_event_call_answered_not_for_a_call_nobody_answered(world):
    sessions, _ = world
    CallStore(sessions).write([started("1.4"), outcome("1.4", answered=False)])
    assert sent(sessions, "call.answered") == []


def test_event_call_ended_is_shaped_like_the_others_and_queued_once(world):
    sessions, _ = world
    (call_id, _), _ = CallStore(sessions).write([started("1.5"), outcome("1.5")])
    for _ in range(2):  # the conversions job run again
        with sessions.begin() as session:
            conversions.on_call(session, call_id)
    ended = sent(sessions, "call.ended")
    assert len(ended) == 2  # queued twice by a job run twice: the receiver drops it by `id`
    ((_, event), (_, again)) = ended
    assert event["id"] == again["id"] == f"call-{call_id}"
    assert set(event["data"]) == CALL_FIELDS | {"disposition", "talk_seconds"}
    assert event["data"]["disposition"] == "answered"


def test_event_call_started_answered_ended_of_a_restricted_caller_go_to_webhooks_marked(world):
    sessions, _ = world
    (call_id, _), *_ = CallStore(sessions).write(
        [started("1.6", RESTRICTED), CallAnswered("1.6", time.time()), outcome("1.6", RESTRICTED)]
    )
    with sessions.begin() as session:
        session.add(ConversionRule(account_id=world[1], name="Any call", applies_to="call"))
    with sessions.begin() as session:
        conversions.on_call(session, call_id)
    queued = sent(sessions)
    assert {k for k, _ in queued} == {"webhook"}
    assert [e["event"] for _, e in queued] == [
        "call.started", "call.answered", "call.ended", "conversion.created",
    ]  # fmt: skip
    assert all(e["data"]["restricted"] for _, e in queued if e["event"] != "conversion.created")


def test_event_lead_created_as_today(world):
    sessions, account = world
    with sessions.begin() as session:
        site = DniSite(account_id=account, name="site", key="k" * 32,
                       origins="https://a.example", replace_numbers="+12025550123")  # fmt: skip
        session.add(site)
        session.flush()
        lead = Lead(
            account_id=account,
            site_id=site.id,
            form="contact",
            fields=json.dumps({"email": "pat@example.com"}),
            source_name="Google",
        )
        session.add(lead)  # fmt: skip
        session.flush()
        lead_id = lead.id
    with sessions.begin() as session:
        conversions.on_lead(session, lead_id)
    ((kind, event),) = sent(sessions)
    assert (kind, event["event"], event["id"]) == ("webhook", "lead.created", f"lead-{lead_id}")
    assert event["data"]["fields"] == {"email": "pat@example.com"}


def test_event_conversion_created_reaches_the_ad_platform_once(world):
    sessions, account = world
    (call_id, _), _ = CallStore(sessions).write([started("1.7"), outcome("1.7")])
    with sessions.begin() as session:
        session.add(ConversionRule(account_id=account, name="Any call", applies_to="call"))
    for _ in range(2):
        with sessions.begin() as session:
            conversions.on_call(session, call_id)
    made = sent(sessions, "conversion.created")
    assert sorted(k for k, _ in made) == ["meta", "webhook"]  # converted once, by the rule
    assert made[0][1]["data"]["call_id"] == call_id


@pytest.fixture
def vault(world, tmp_path):
    sessions, _ = world
    key_file = tmp_path / "keys"
    keys.create(key_file)
    spool = tmp_path / "spool"
    spool.mkdir()
    return RecordingVault(sessions, tmp_path / "store", key_file, spool_owners={os.getuid()}), spool


def seal(vault: RecordingVault, spool: Path, linkedid: str, audio: bytes) -> None:
    spool_file = spool / raw_name(linkedid)
    spool_file.write_bytes(audio)
    vault.seal(spool_file, linkedid)


def test_event_recording_ready_with_the_seal_never_a_key_nor_a_file(world, vault):
    sessions, _ = world
    vault_, spool = vault
    call_id = CallStore(sessions).write([started("1.8"), outcome("1.8")])[0][0]
    seal(vault_, spool, "1.8", bytes(32000 * 2))
    with pytest.raises(SpoolFileRefused):  # a second spool file for the call: no second event
        seal(vault_, spool, "1.8", bytes(32000))
    ((_, event),) = sent(sessions, "recording.ready")
    assert event["id"] == f"call-{call_id}-recording"
    assert set(event["data"]) == CALL_FIELDS | {"seconds", "format"}
    assert (event["data"]["seconds"], event["data"]["format"]) == (2.0, AUDIO_FORMAT)
    with sessions() as session:
        row = session.get(Recording, call_id)
        secrets = [row.file_name, row.wrapped_key, row.file_id, Path(row.file_name).name]
    payload = json.dumps(event)
    assert not [s for s in secrets if s in payload]


def test_event_transcript_ready_for_the_first_transcript_only(world, vault):
    sessions, _ = world
    call_id = CallStore(sessions).write([started("1.10"), outcome("1.10")])[0][0]
    seal(*vault, "1.10", bytes(3200))
    result = service.Result("ko", 3.5, [Word(0, 0.1, 0.6, 0.9, "예약")])
    for _ in range(2):  # transcribed, then transcribed again
        with sessions.begin() as session:
            service.store(session, call_id, result)
    ((_, event),) = sent(sessions, "transcript.ready")
    assert event["id"] == f"call-{call_id}-transcript"
    assert set(event["data"]) == CALL_FIELDS | {"model", "seconds"}
    assert (event["data"]["model"], event["data"]["seconds"]) == ("ko", 3.5)
    assert "예약" not in json.dumps(event, ensure_ascii=False)  # the words stay in the box


def test_every_call_event_is_found_by_the_persons_erasure(world, vault):
    sessions, _ = world
    vault_, spool = vault
    call_id = CallStore(sessions).write(
        [started("1.11"), CallAnswered("1.11", time.time()), outcome("1.11")]
    )[0][0]
    seal(vault_, spool, "1.11", bytes(3200))
    with sessions.begin() as session:
        conversions.on_call(session, call_id)
        service.store(session, call_id, service.Result("ko", 1.0, []))
    with sessions() as session:
        ids = set(session.scalars(select(Delivery.id)))
        names = set(session.scalars(select(Delivery.event)))
        found = find(session, the_box(session, "test"), parse(CALLER))
    assert names == set(conversions.EVENTS) - {"lead.created", "conversion.created"}
    assert set(found.deliveries) == ids


def test_the_writer_tells_the_bus_of_each_start_and_answer_once(world):
    sessions, _ = world
    bus = events.EventBus()
    seen: list[object] = []
    for kind in (events.CallStarted, events.CallAnswered, events.CallFinished):
        bus.subscribe(kind, seen.append)
    writer = CallWriter(CallStore(sessions), bus)
    answer = CallAnswered("1.12", time.time())
    asyncio.run(writer.write([started("1.12"), started("1.12"), answer, answer]))
    asyncio.run(writer.write([answer, outcome("1.12"), outcome("1.12")]))
    with sessions() as session:
        call_id = session.scalar(select(Call.id).where(Call.linkedid == "1.12"))
    assert [type(e) for e in seen] == [events.CallStarted, events.CallAnswered, events.CallFinished]
    assert seen[:2] == [events.CallStarted(call_id, "1.12"), events.CallAnswered(call_id, "1.12")]


@pytest.mark.parametrize("event", [*STRINGS, "call.ended call.started", "CALL.STARTED"])
def test_a_hostile_event_list_is_refused_in_one_line(world, tmp_path, event):
    sessions, account = world
    box = SecretBox(bytes(32))
    request = destinations.DestinationRequest(
        "CRM", "webhook", "https://crm.example/hook", ("call.started", event)
    )
    with sessions.begin() as session, pytest.raises(admin.AdminError) as refused:
        destinations.add_destination(session, box, request, account, "cli:test")
    assert "\n" not in str(refused.value) and "call.started" in str(refused.value)


def test_an_ad_platform_may_subscribe_to_conversions_only(world):
    sessions, account = world
    request = destinations.DestinationRequest(
        "Ads", "meta", events=("conversion.created", "call.started"),
        settings={"pixel_id": "123"}, secrets={"access_token": "t"},
    )  # fmt: skip
    with sessions.begin() as session, pytest.raises(admin.AdminError, match=r"conversion\.created"):
        destinations.add_destination(session, SecretBox(bytes(32)), request, account, "cli:test")


def test_the_integrator_guides_webhook_table_lists_exactly_the_events():
    guide = (Path(__file__).parents[2] / "docs" / "integrator-guide.md").read_text()
    webhooks = guide.split("## Webhooks", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(" `") for line in webhooks.splitlines() if line[:3] == "| `"}
    assert rows == set(conversions.EVENTS)  # each has its test: test_integrator_coverage.py
