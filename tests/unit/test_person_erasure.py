"""Find, export, correct and erase by person on a real data dir: SQLite in WAL mode, sealed
recordings, a transcript in the search index, a visit, leads and outbox payloads. After an
erasure not a byte of the person is left in any file of the data dir."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from appliance import admin, bootstrap, cli
from appliance.access import the_box
from appliance.calls import annotations
from appliance.config import load
from appliance.db.engine import make_engine, session_factory
from appliance.db.models import (
    Account,
    AuditEntry,
    Call,
    Conversion,
    Delivery,
    Destination,
    DniSite,
    ErasureRequest,
    Lead,
    Recording,
    Visit,
    VisitPage,
)
from appliance.jobs.runner import Runner
from appliance.privacy import erasure
from appliance.privacy.person import find
from appliance.privacy.subject import parse
from appliance.recordings.spool_files import raw_name
from appliance.recordings.vault import RecordingVault
from appliance.transcription import search, service
from appliance.transcription.words import Word
from tests.made_once import initialised

AUDIO = bytes(range(256)) * 300
NUMBER = "(312) 555-0111"
FORMS = (b"3125550111", b"555-0111", b"pat@example.com", b"Smithereens", b"xylophone",
         b"marmalade", b"quokka")  # fmt: skip
OTHER = "+13125550999"
VISITOR = "ab" * 16


@dataclass
class Box:
    config: Path
    data: Path
    sessions: object
    vault: RecordingVault
    accounts: dict[str, int]
    calls: dict[str, str]

    def close(self) -> None:
        self.sessions.kw["bind"].dispose()  # type: ignore[attr-defined]


def said(sentence: str) -> list[Word]:
    return [Word(0, i * 0.5, i * 0.5 + 0.4, 0.9, w) for i, w in enumerate(sentence.split())]


def cli_run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def box(tmp_path, capsys, monkeypatch) -> Box:
    for name in list(os.environ):
        if name.startswith("APPLIANCE_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    config = tmp_path / "appliance.ini"
    config.write_text(f"[paths]\ndata_dir = {data}\n\n[log]\nlevel = warning\n")
    initialised(data)
    loaded = load(config)
    sessions = session_factory(make_engine(loaded.database.url))
    store, key_file = Path(loaded.recordings.store_dir), Path(loaded.recordings.key_file)
    vault = RecordingVault(sessions, store, key_file, spool_owners={os.getuid()})
    with sessions.begin() as session:
        agency = admin.default_account(session)
        a = admin.add_account(session, "Client A", agency.id)
        b = admin.add_account(session, "Client B", agency.id)
        accounts = {"agency": agency.id, "a": a.id, "b": b.id}
    made = Box(config, data, sessions, vault, accounts, {})
    fill(made, tmp_path / "spool")
    yield made
    made.close()


def add_call(box: Box, account: str, number: str, name: str, spool: Path, words: str = "") -> str:
    call_id, linkedid = uuid.uuid4().hex, f"{uuid.uuid4().int % 10**10}.1"
    with box.sessions.begin() as session:  # type: ignore[attr-defined]
        session.add(Call(id=call_id, linkedid=linkedid, account_id=box.accounts[account],
                         dialled="+12025550123", caller_number=number, caller_name=name,
                         started_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40),
                         disposition="answered"))  # fmt: skip
    spool.mkdir(exist_ok=True)
    (spool / raw_name(linkedid)).write_bytes(AUDIO)
    box.vault.seal(spool / raw_name(linkedid), linkedid)
    if words:
        with box.sessions.begin() as session:  # type: ignore[attr-defined]
            service.store(session, call_id, service.Result("test", 10.0, said(words)))
    return call_id


def fill(box: Box, spool: Path) -> None:
    """Pat calls client A twice (as the carrier sends it, and in E.164) and B once, visits
    A's site and sends a form; someone else calls A and sends a form too."""
    box.calls["pat-a1"] = add_call(box, "a", "13125550111", "Pat Smithereens", spool,
                                   "please book a xylophone marmalade lesson")  # fmt: skip
    box.calls["pat-a2"] = add_call(box, "a", "+13125550111", "Pat Smithereens", spool)
    box.calls["pat-b"] = add_call(box, "b", "3125550111", "Pat Smithereens", spool, "quokka")
    box.calls["other"] = add_call(box, "a", OTHER, "Robin Other", spool,
                                  "please book a piano lesson")  # fmt: skip
    a = box.accounts["a"]
    now = dt.datetime.now(dt.UTC)
    with box.sessions.begin() as session:  # type: ignore[attr-defined]
        site = DniSite(account_id=a, name="site", key="k" * 32, origins="https://a.example",
                       replace_numbers="+12025550123")  # fmt: skip
        session.add(site)
        session.flush()
        visit = Visit(id="v" * 32, site_id=site.id, account_id=a, visitor=VISITOR, started_at=now,
                      last_seen_at=now, landing_page="https://a.example/?gclid=quokka",
                      source_name="Google")  # fmt: skip
        session.add(visit)
        session.flush()
        session.add(VisitPage(visit_id=visit.id, at=now, url="https://a.example/pricing"))
        call = session.get(Call, box.calls["pat-a1"])
        call.visit_id, call.attribution = visit.id, "held"
        fields = {"name": "Pat Smithereens", "phone": NUMBER, "email": "Pat@Example.com"}
        session.add(Lead(account_id=a, site_id=site.id, visit_id=visit.id, form="contact",
                         fields=json.dumps(fields)))  # fmt: skip
        others = {"name": "Robin Other", "phone": OTHER}
        session.add(Lead(account_id=a, site_id=site.id, form="contact", fields=json.dumps(others)))
        hook = Destination(account_id=a, name="crm", kind="webhook", url="https://crm.example/")
        session.add(hook)
        session.flush()
        for call_id in (box.calls["pat-a1"], box.calls["other"]):
            number = session.get(Call, call_id).caller_number
            payload = {"event": "call.ended", "data": {"call_id": call_id,
                                                          "caller_number": number}}  # fmt: skip
            session.add(Delivery(destination_id=hook.id, event="call.ended",
                                 payload=json.dumps(payload)))  # fmt: skip
        session.add(Conversion(account_id=a, name="lead", call_id=box.calls["pat-a1"],
                               occurred_at=now, currency="USD"))  # fmt: skip


def files_holding(data: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    """Every (file, needle) where a needle is in a file's raw bytes under the data dir."""
    hits = []
    for path in sorted(data.rglob("*")):
        if path.is_file() and not path.is_symlink():
            raw = path.read_bytes()
            hits += [(str(path.relative_to(data)), n) for n in needles if n in raw]
    return hits


def wrapped_keys(box: Box, *names: str) -> list[bytes]:
    with box.sessions() as session:  # type: ignore[attr-defined]
        rows = [session.get(Recording, box.calls[n]) for n in names]
        return [r.wrapped_key.encode() for r in rows] + [bytes.fromhex(r.wrapped_key) for r in rows]


def recording_file(box: Box, name: str) -> Path:
    with box.sessions() as session:  # type: ignore[attr-defined]
        return box.vault.store_dir / session.get(Recording, box.calls[name]).file_name


def test_find_counts_every_kind_within_the_accounts_asked_about(box):
    with box.sessions() as session:
        everyone = the_box(session, "test")
        client_a = erasure.scope_of(session, box.accounts["a"], "test")
        found = find(session, everyone, parse(NUMBER))
        in_a = find(session, client_a, parse("+1 312 555 0111"))
        by_mail = find(session, client_a, parse("PAT@example.COM"))
        by_visitor = find(session, client_a, parse(f"visitor:{VISITOR}"))
        client_b = erasure.scope_of(session, box.accounts["b"], "test")
        from_b = find(session, client_b, parse(f"visitor:{VISITOR}"))
    assert found.counts() == {"calls": 3, "held": 0, "recordings": 3, "transcripts": 2,
                              "analyses": 0, "conversions": 1, "visits": 1, "leads": 1,
                              "deliveries": 1, "held_visits": 0, "held_leads": 0,
                              "held_deliveries": 0}  # fmt: skip
    assert sorted(in_a.calls) == sorted([box.calls["pat-a1"], box.calls["pat-a2"]])
    assert box.calls["pat-b"] not in in_a.calls  # another tenant's call is never found
    assert len(by_mail.leads) == 1 and by_mail.visits == ["v" * 32] and not by_mail.calls
    assert by_visitor.calls == [box.calls["pat-a1"]] and len(by_visitor.leads) == 1
    assert from_b.empty()


def test_erasure_leaves_no_byte_of_the_person_in_the_data_dir(box, capsys):
    keys = wrapped_keys(box, "pat-a1", "pat-a2", "pat-b")
    sealed = [recording_file(box, n) for n in ("pat-a1", "pat-a2", "pat-b")]
    other_key = wrapped_keys(box, "other")
    assert files_holding(box.data, list(FORMS) + keys)  # the scan sees what is there
    box.close()
    code, out, _ = cli_run(capsys, "--config", box.config, "person", "erase", NUMBER)
    assert code == 0 and "nothing erased yet" in out and "calls" in out
    code, out, err = cli_run(capsys, "--config", box.config, "person", "erase", NUMBER, "--yes")
    assert code == 0, err
    assert "3 calls" in out and "3 recordings" in out and "2 transcripts" in out
    assert "1 leads" in out and "1 visits" in out and "1 deliveries" in out
    assert files_holding(box.data, list(FORMS) + keys) == []
    assert not any(path.exists() for path in sealed)
    # other people's data is intact, recording, transcript, search and all
    with box.sessions() as session:
        assert session.get(Call, box.calls["other"]) is not None
        assert session.get(Recording, box.calls["other"]).wrapped_key.encode() == other_key[0]
        assert [lead.fields for lead in session.scalars(select(Lead))] == [
            json.dumps({"name": "Robin Other", "phone": OTHER})
        ]
        assert len(session.scalars(select(Delivery)).all()) == 1
        hits = search.search(session, the_box(session, "t"), "piano")
        assert [h.call_id for h in hits] == [box.calls["other"]]
        request = session.scalars(select(ErasureRequest)).one()
        assert request.state == "done" and request.subject_sealed is None
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "person.erase")).one()
    assert "3125550111" not in (entry.detail or "") and json.loads(entry.detail)["calls"] == 3
    with box.vault.open(box.calls["other"], "test", "recording.listen") as recording:
        assert b"".join(recording.read()) == AUDIO


def test_an_erasure_for_no_data_says_so_and_changes_nothing(box, capsys):
    box.close()
    before = files_holding(box.data, [b"+13125550000"])
    code, _, err = cli_run(capsys, "--config", box.config, "person", "erase", "+13125550000",
                           "--yes")  # fmt: skip
    assert code == 2 and err == "appliance: nothing is stored about that number in your accounts\n"
    with box.sessions() as session:
        assert session.scalars(select(ErasureRequest)).all() == []
    assert before == []


def test_an_interrupted_erasure_resumes_and_finishes(box, capsys, monkeypatch):
    keys = wrapped_keys(box, "pat-a1", "pat-a2")
    real = erasure._erase_call
    seen = []

    def crash_on_second(sessions, request_id, call_id):
        seen.append(call_id)
        if len(seen) == 2:
            raise RuntimeError("power cut")
        real(sessions, request_id, call_id)

    monkeypatch.setattr(erasure, "_erase_call", crash_on_second)
    box_key = bootstrap.secret_box(load(box.config))
    with box.sessions() as session:
        principal = erasure.scope_of(session, box.accounts["a"], "cli:test")
    request_id = erasure.start(box.sessions, box_key, principal, parse(NUMBER), "cli:test")
    with pytest.raises(RuntimeError):
        erasure.run(box.sessions, box.vault, box_key, request_id)
    with box.sessions() as session:
        request = session.get(ErasureRequest, request_id)
        assert request.state == "pending" and request.subject_sealed
    monkeypatch.setattr(erasure, "_erase_call", real)
    box.close()
    code, out, err = cli_run(capsys, "--config", box.config, "person", "erase", "--resume")
    assert code == 0, err
    assert f"erasure {request_id}: erased 2 calls" in out and "2 recordings" in out
    with box.sessions() as session:
        assert session.get(ErasureRequest, request_id).state == "done"
        assert session.get(Call, box.calls["pat-b"]) is not None  # client B was not asked
    assert files_holding(box.data, keys) == []
    code, out, _ = cli_run(capsys, "--config", box.config, "person", "erase", "--resume")
    assert out == "no erasure is waiting to be finished\n"


def test_calls_under_legal_hold_are_kept_and_reported(box, capsys):
    with box.sessions.begin() as session:
        session.get(Call, box.calls["pat-a2"]).legal_hold = True
        session.get(Account, box.accounts["b"]).legal_hold_days = 90  # its call is 40 days old
    box.close()
    code, out, err = cli_run(capsys, "--config", box.config, "person", "erase", NUMBER, "--yes")
    assert code == 0, err
    assert "erased 1 calls" in out and "2 call(s) kept under legal hold" in out
    with box.sessions() as session:
        assert session.get(Recording, box.calls["pat-a2"]) is not None
        assert session.get(Recording, box.calls["pat-b"]) is not None
        assert session.get(Call, box.calls["pat-a1"]) is None


def test_export_holds_the_rows_and_the_recordings_but_no_key(box, capsys, tmp_path):
    with box.sessions.begin() as session:
        annotations.add_note(session, box.calls["pat-a1"], "wants a quote", "agi")
    box.close()
    target = tmp_path / "pat.zip"
    code, _out, err = cli_run(capsys, "--config", box.config, "person", "export",
                             "pat@example.com", target)  # fmt: skip
    assert code == 0, err
    assert target.stat().st_mode & 0o777 == 0o600
    code, _, err = cli_run(capsys, "--config", box.config, "person", "export", NUMBER, target)
    assert code == 2 and "exists" in err
    (tmp_path / "link.zip").symlink_to(tmp_path / "elsewhere.zip")
    code, _, err = cli_run(capsys, "--config", box.config, "person", "export", NUMBER,
                           tmp_path / "link.zip")  # fmt: skip
    assert code == 2 and not (tmp_path / "elsewhere.zip").exists()
    whole = tmp_path / "whole.zip"
    assert cli_run(capsys, "--config", box.config, "person", "export", NUMBER, whole)[0] == 0
    with zipfile.ZipFile(whole) as archive:
        document = json.loads(archive.read("person.json"))
        wav = archive.read(f"recordings/{box.calls['pat-a1']}.wav")
        names = archive.namelist()
    assert len([n for n in names if n.endswith(".wav")]) == 3
    assert wav[44:] == AUDIO
    assert {c["caller_name"] for c in document["calls"]} == {"Pat Smithereens"}
    assert "wrapped_key" not in json.dumps(document)
    turns = [t["text"] for t in document["transcripts"][0]["turns"]] + [
        t["text"] for t in document["transcripts"][1]["turns"]
    ]
    assert "please book a xylophone marmalade lesson" in turns
    assert document["leads"][0]["fields"]["email"] == "Pat@Example.com"
    assert [n["text"] for n in document["call_notes"]] == ["wants a quote"]
    with box.sessions() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("recording.export") == 3 and "person.export" in actions


def test_correct_sets_name_and_number_and_audits_no_value(box, capsys):
    box.close()
    code, out, err = cli_run(capsys, "--config", box.config, "person", "correct", NUMBER,
                             "--account", box.accounts["a"], "--name", "Pat Smith",
                             "--number", "+1 312 555 0112")  # fmt: skip
    assert code == 0, err
    assert out == "corrected 2 call(s) and 1 lead(s)\n"
    with box.sessions() as session:
        call = session.get(Call, box.calls["pat-a1"])
        lead = json.loads(session.scalars(select(Lead).order_by(Lead.id)).first().fields)
        untouched = session.get(Call, box.calls["pat-b"])
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "person.correct"))
        entry = entry.one()
    assert (call.caller_name, call.caller_number) == ("Pat Smith", "+13125550112")
    assert lead["name"] == "Pat Smith" and lead["phone"] == "+13125550112"
    assert untouched.caller_name == "Pat Smithereens"
    assert "Pat" not in entry.detail and "555" not in entry.detail


@pytest.mark.parametrize(
    "args, said",
    [
        (["find", "not a number"], "is not a phone number"),
        (["find", "visitor:../../etc"], "a visitor id is 32 hexadecimal digits"),
        (["find", "a@b"], "is not an e-mail address"),
        (["correct", NUMBER], "say what to correct"),
        (["correct", NUMBER, "--number", "12"], "is not a valid number"),
        (["correct", NUMBER, "--name", "\x1b[31mred"], "printable characters"),
    ],
)
def test_bad_input_is_one_line(box, capsys, args, said):
    box.close()
    code, _, err = cli_run(capsys, "--config", box.config, "person", *args)
    assert code == 2 and said in err and err.count("\n") == 1


def test_deleting_a_recording_leaves_no_wrapped_key_in_the_wal(box, capsys):
    key = wrapped_keys(box, "other")
    box.close()
    code, _, err = cli_run(capsys, "--config", box.config, "recordings", "delete",
                           box.calls["other"])  # fmt: skip
    assert code == 0, err
    assert files_holding(box.data, key) == []


def test_a_visitor_erasure_cut_short_finds_the_rest_through_the_visit(box, monkeypatch):
    def cut(*_args):
        raise RuntimeError("power cut")

    real = erasure._erase_call
    monkeypatch.setattr(erasure, "_erase_call", cut)
    secret = bootstrap.secret_box(load(box.config))
    with box.sessions() as session:
        principal = the_box(session, "cli:test")
    request_id = erasure.start(
        box.sessions, secret, principal, parse(f"visitor:{VISITOR}"), "cli:test"
    )
    with pytest.raises(RuntimeError):
        erasure.run(box.sessions, box.vault, secret, request_id)
    monkeypatch.setattr(erasure, "_erase_call", real)
    report = erasure.run(box.sessions, box.vault, secret, request_id)
    assert report.removed == {"calls": 1, "conversions": 1, "deliveries": 1, "leads": 1,
                              "recordings": 1, "transcripts": 1, "visits": 1}  # fmt: skip
    with box.sessions() as session:
        assert session.get(Visit, "v" * 32) is None
        assert session.get(Call, box.calls["pat-a2"]) is not None  # not from that visit


def test_the_job_runner_finishes_an_erasure_that_was_only_started(box):
    secret = bootstrap.secret_box(load(box.config))
    with box.sessions() as session:
        principal = the_box(session, "user:owner")
    request_id = erasure.start(
        box.sessions, secret, principal, parse("pat@example.com"), "cli:test"
    )
    runner = Runner(box.sessions, erasure.handlers(box.vault, secret), "test")
    assert runner.drain(threading.Event()) == 1
    with box.sessions() as session:
        assert session.get(ErasureRequest, request_id).state == "done"
        assert session.scalars(select(Lead)).all()[0].fields.find("Robin") > 0


def test_an_erasure_of_held_calls_only_is_refused_in_one_line(box, capsys):
    with box.sessions.begin() as session:
        session.get(Call, box.calls["pat-b"]).legal_hold = True
    box.close()
    code, _, err = cli_run(capsys, "--config", box.config, "person", "erase", NUMBER,
                           "--account", box.accounts["b"], "--yes")  # fmt: skip
    assert (code, err) == (
        2,
        "appliance: all 1 call(s) found are under legal hold: nothing to erase\n",
    )
    with box.sessions() as session:
        assert session.scalars(select(ErasureRequest)).all() == []


def test_what_a_held_call_rests_on_is_kept_and_reported(box, capsys):
    """The held call's visit (its attribution evidence) and its payload stay."""
    with box.sessions.begin() as session:
        session.get(Call, box.calls["pat-a1"]).legal_hold = True
    box.close()
    code, out, err = cli_run(capsys, "--config", box.config, "person", "erase", NUMBER,
                             "--account", box.accounts["a"], "--yes")  # fmt: skip
    assert code == 0, err
    assert "erased 1 calls" in out and "1 leads" in out
    assert "1 call(s), 1 visit(s), 1 delivery(s) kept under legal hold" in out
    with box.sessions() as session:
        assert session.get(Visit, "v" * 32) is not None
        assert session.get(Call, box.calls["pat-a1"]).visit_id == "v" * 32
        payloads = [d.payload for d in session.scalars(select(Delivery))]
        assert len(payloads) == 2 and any(box.calls["pat-a1"] in p for p in payloads)
        assert session.get(Call, box.calls["pat-a2"]) is None
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "person.erase"))
        detail = json.loads(entry.one().detail)
    assert detail["kept_under_hold"] == {"calls": 1, "deliveries": 1, "visits": 1}


def test_leads_within_the_accounts_hold_are_kept(box, capsys):
    with box.sessions.begin() as session:
        session.get(Account, box.accounts["a"]).legal_hold_days = 30  # calls: 40 days old
    box.close()
    code, out, err = cli_run(capsys, "--config", box.config, "person", "erase",
                             "pat@example.com", "--yes")  # fmt: skip
    assert code == 0, err
    assert "1 visits" in out and "1 lead(s) kept under legal hold" in out
    with box.sessions() as session:
        fields = [lead.fields for lead in session.scalars(select(Lead))]
    assert len(fields) == 2 and any("Pat@Example.com" in f for f in fields)
    code, _, err = cli_run(capsys, "--config", box.config, "person", "erase",
                           "pat@example.com", "--yes")  # fmt: skip
    assert (code, err) == (2, "appliance: all 1 lead(s) found are under legal hold: "
                              "nothing to erase\n")  # fmt: skip


def test_a_visitor_is_not_given_a_call_only_ambiguously_from_their_visit(box):
    """A recycled pool number: Robin's call may have come from Pat's page, or not."""
    with box.sessions.begin() as session:
        call = session.get(Call, box.calls["other"])
        call.visit_id, call.attribution = "v" * 32, "ambiguous"
        hook = session.scalars(select(Destination)).one()
        event = {"event": "call.ended", "data": {"call_id": call.id, "visit_id": "v" * 32,
                                                    "caller_number": OTHER}}  # fmt: skip
        session.add(Delivery(destination_id=hook.id, event="call.ended",
                             payload=json.dumps(event, sort_keys=True)))  # fmt: skip
        session.add(Delivery(destination_id=hook.id, event="visit",
                             payload=json.dumps({"visit_id": "v" * 32})))  # fmt: skip
    with box.sessions() as session:
        principal = the_box(session, "cli:test")
        found = find(session, principal, parse(f"visitor:{VISITOR}"))
        payloads = [session.get(Delivery, i).payload for i in found.deliveries]
    assert found.calls == [box.calls["pat-a1"]]
    assert all(OTHER not in p and box.calls["other"] not in p for p in payloads)
    assert len(payloads) == 2  # pat-a1's call event and the visit's own
    secret = bootstrap.secret_box(load(box.config))
    request_id = erasure.start(
        box.sessions, secret, principal, parse(f"visitor:{VISITOR}"), "cli:test"
    )
    erasure.run(box.sessions, box.vault, secret, request_id)
    with box.sessions() as session:
        other = session.get(Call, box.calls["other"])
        assert other is not None and other.caller_number == OTHER
        assert session.get(Recording, box.calls["other"]) is not None
        assert sum(OTHER in d.payload for d in session.scalars(select(Delivery))) == 2


@pytest.mark.parametrize(
    "started, ended, after",
    [
        (dt.timedelta(minutes=3), dt.timedelta(seconds=30), "after "),
        (dt.timedelta(minutes=1), None, "2 minutes after it ends"),
    ],
)
def test_an_erasure_waits_for_a_call_in_progress_or_just_ended(box, capsys, started, ended,
                                                               after):  # fmt: skip
    """Else the call writer or the CDR reconciler would write the call back."""
    now = dt.datetime.now(dt.UTC)
    with box.sessions.begin() as session:
        call = session.get(Call, box.calls["pat-a2"])
        call.started_at = now - started
        call.ended_at = now - ended if ended else None
    box.close()
    code, _, err = cli_run(capsys, "--config", box.config, "person", "erase", NUMBER, "--yes")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("appliance: a call of this person is in progress or ended less "
                          "than 2 minutes ago; erase again " + after)  # fmt: skip
    with box.sessions() as session:
        assert session.scalars(select(ErasureRequest)).all() == []
        assert session.get(Call, box.calls["pat-a1"]) is not None
    with box.sessions.begin() as session:  # a row never finished, from long ago: no call
        call = session.get(Call, box.calls["pat-a2"])
        call.started_at, call.ended_at = now - dt.timedelta(days=1), None
    code, out, err = cli_run(capsys, "--config", box.config, "person", "erase", NUMBER, "--yes")
    assert code == 0 and "erased 3 calls" in out, err
