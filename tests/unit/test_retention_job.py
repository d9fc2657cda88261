"""The daily retention job on a real data dir: SQLite in WAL mode, recordings sealed by the
vault. Each kind of data goes or stays as its account says, legal holds keep what they hold,
the reports still count anonymised calls, and nothing expired is left in the database's files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from appliance import admin
from appliance.access import the_box
from appliance.attribution import report
from appliance.calls import annotations, dashboard
from appliance.config import ConfigError, load
from appliance.db.models import (
    Account,
    AuditEntry,
    Call,
    CallAnalysis,
    Conversion,
    Delivery,
    Destination,
    DniSite,
    Lead,
    NumberHold,
    Recording,
    TrackingNumber,
    Transcript,
    TranscriptTurn,
    Visit,
    VisitPage,
)
from appliance.privacy.retention_job import PrivacyRetention
from appliance.recordings import keys
from appliance.recordings.spool_files import raw_name
from appliance.transcription import service
from tests.made_once import initialised
from tests.unit.test_backup_restore import (
    AUDIO,
    KEY_PASSPHRASE,
    Run,
    sessions_of,
    vault_of,
    write_config,
)
from tests.unit.test_backup_restore import said as words

NOW = dt.datetime.now(dt.UTC)
OLD_CALLER = "+13125550987"  # the number that must be gone from every byte
NEW_CALLER = "+13125550444"


@pytest.fixture
def run(capsys, monkeypatch):
    return Run(capsys, monkeypatch)


@pytest.fixture
def box(tmp_path, run, monkeypatch):
    for name in ("APPLIANCE_CONFIG",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(keys, "SCRYPT_N", 2**10)  # a sealed key file keeps its own work factor
    config = write_config(tmp_path / "appliance.ini", tmp_path / "data")
    initialised(tmp_path / "data")
    secrets = tmp_path / "data" / "secrets"
    (secrets / "key.pass").write_text(KEY_PASSPHRASE + "\n")
    (secrets / "key.pass").chmod(0o600)
    assert run("--config", config, "keys", "seal", "--password-stdin", stdin=KEY_PASSPHRASE)[0] == 0
    return Box(config)


class Box:
    """A data dir with one client account and helpers that put data in it, days ago."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.engine, self.sessions = sessions_of(config)
        self.vault = vault_of(config, self.sessions)
        with self.sessions.begin() as session:
            self.account = admin.add_account(session, "Dentist <b>&</b>", None).id
            site = DniSite(
                account_id=self.account, name="site", key="k" * 32, origins="", replace_numbers=""
            )
            number = TrackingNumber(account_id=self.account, e164="+12025550100")
            session.add_all([site, number])
            session.flush()
            destination = Destination(account_id=self.account, name="hook", kind="webhook")
            session.add(destination)
            session.flush()
            self.site, self.number, self.destination = site.id, number.id, destination.id

    def set(self, **settings: object) -> None:
        with self.sessions.begin() as session:
            session.execute(update(Account).where(Account.id == self.account).values(**settings))

    def call(self, days: float, caller: str, held: bool = False, recorded: bool = True) -> str:
        at = NOW - dt.timedelta(days=days)
        linkedid = f"{at.timestamp():.6f}"
        with self.sessions.begin() as session:
            call = Call(
                account_id=self.account,
                linkedid=linkedid,
                dialled="+12025550100",
                caller_number=caller,
                caller_name="Alice Example",
                started_at=at,
                disposition="answered",
                source_name="Google",
                legal_hold=held,
            )
            session.add(call)
            session.flush()
            call_id = call.id
            session.add(
                Conversion(
                    account_id=self.account, name="call", call_id=call_id, occurred_at=at,
                    currency="USD",
                )
            )  # fmt: skip
        if recorded:
            spool = self.config.parent / "spool"
            spool.mkdir(exist_ok=True)
            (spool / raw_name(linkedid)).write_bytes(AUDIO)
            self.vault.seal(spool / raw_name(linkedid), linkedid)
            with self.sessions.begin() as session:
                session.execute(
                    update(Recording).where(Recording.call_id == call_id).values(created_at=at)
                )
                service.store(session, call_id, service.Result("m", 3.0, words("my number is")))
                session.add(CallAnalysis(call_id=call_id, score=5, tags="[]", details="{}"))
        return call_id

    def visit(self, days: float) -> str:
        at = NOW - dt.timedelta(days=days)
        visit_id = f"v{int(at.timestamp())}"
        with self.sessions.begin() as session:
            session.add(
                Visit(
                    id=visit_id, site_id=self.site, account_id=self.account, visitor="x" * 32,
                    started_at=at, last_seen_at=at, landing_page="https://a.example/",
                    source_name="Google",
                )
            )  # fmt: skip
            session.flush()
            session.add(VisitPage(visit_id=visit_id, at=at, url="https://a.example/"))
            session.add(NumberHold(visit_id=visit_id, number_id=self.number, held_from=at))
        return visit_id

    def lead(self, days: float, phone: str) -> int:
        at = NOW - dt.timedelta(days=days)
        with self.sessions.begin() as session:
            lead = Lead(
                account_id=self.account, site_id=self.site, created_at=at, form="contact",
                fields=json.dumps({"phone": phone}),
            )  # fmt: skip
            session.add(lead)
            session.flush()
            return lead.id

    def delivery(self, days: float, state: str, payload: str) -> int:
        at = NOW - dt.timedelta(days=days)
        with self.sessions.begin() as session:
            row = Delivery(
                destination_id=self.destination, event="conversion.created", payload=payload,
                state=state, created_at=at,
            )  # fmt: skip
            session.add(row)
            session.flush()
            return row.id

    def job(self, **kwargs: object) -> PrivacyRetention:
        return PrivacyRetention(self.sessions, self.vault, **kwargs)  # type: ignore[arg-type]

    def count(self, column: object, *where: object) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count(column)).where(*where)) or 0  # type: ignore[arg-type]

    def raw_bytes(self) -> bytes:
        data = load(self.config).data_dir
        return b"".join(p.read_bytes() for p in data.glob("appliance.db*") if p.is_file())


def test_new_accounts_get_the_documented_defaults(box):
    with box.sessions() as session:
        account = session.get(Account, box.account)
        assert (account.call_days, account.call_expiry) == (730, "anonymise")
        assert (account.visit_days, account.lead_days, account.delivery_days) == (90, 365, 30)
        assert account.transcript_days is None and account.recording_days is None


def test_each_kind_goes_or_stays_as_set_and_nothing_is_left_in_the_files(box):
    box.set(transcript_days=30, call_days=60, visit_days=90, lead_days=365, delivery_days=30)
    old, new = box.call(100, OLD_CALLER), box.call(10, NEW_CALLER)
    with box.sessions.begin() as session:  # integrators' notes may name the caller
        annotations.add_note(session, old, f"call back {OLD_CALLER}", "agi")
        annotations.add_tags(session, old, ["vip"], "agi")
        annotations.add_note(session, new, "kept", "agi")
    old_visit, new_visit = box.visit(100), box.visit(10)
    box.lead(400, OLD_CALLER), box.lead(10, NEW_CALLER)
    box.delivery(40, "delivered", json.dumps({"caller": OLD_CALLER}))
    parked = box.delivery(40, "parked", "{}")
    pending = box.delivery(40, "pending", "{}")
    fresh = box.delivery(5, "delivered", "{}")

    result = box.job().apply(NOW)

    assert result.removed[box.account] == {
        "transcripts": 1, "calls anonymised": 1, "visits": 1, "leads": 1, "deliveries": 2,
    }  # fmt: skip
    with box.sessions() as session:
        anonymised, kept = session.get(Call, old), session.get(Call, new)
        assert anonymised.caller_number is None and anonymised.caller_name is None
        assert anonymised.anonymised_at is not None and anonymised.source_name == "Google"
        assert kept.caller_number == NEW_CALLER and kept.anonymised_at is None
        assert annotations.of_call(session, old).notes == ()  # the tag stays for reports
        assert annotations.of_call(session, old).tags == ("vip",)
        assert annotations.of_call(session, new).notes == (("agi", "kept"),)
        # the old call's recording stays (no recording limit), its transcript does not
        assert session.get(Recording, old) is not None
        assert session.get(Transcript, old) is None and session.get(CallAnalysis, old) is None
        assert session.get(Transcript, new) is not None
        assert session.get(Visit, old_visit) is None and session.get(Visit, new_visit)
        assert {d.id for d in session.scalars(select(Delivery))} == {pending, fresh}
        assert parked not in {d.id for d in session.scalars(select(Delivery))}
        # the reports still count the anonymised call
        since, until = (NOW - dt.timedelta(days=200)).date(), NOW.date()
        board = dashboard.build(session, the_box(session, "t"), since, until, box.account)
        assert board.calls == 2 and board.answered == 2
        rows = report.by_source(session, the_box(session, "t"), NOW - dt.timedelta(days=200), NOW)
        assert sum(r.calls for r in rows) == 2
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "retention.apply")
        ).one()
        assert entry.account_id == box.account and entry.actor == "retention"
        assert "calls anonymised 1" in (entry.detail or "")
    assert box.count(TranscriptTurn.id, TranscriptTurn.call_id == old) == 0
    assert box.count(VisitPage.id, VisitPage.visit_id == old_visit) == 0
    assert box.count(NumberHold.id, NumberHold.visit_id == old_visit) == 0
    assert box.count(Lead.id) == 1
    raw = box.raw_bytes()  # the database and its WAL, with the engine still open
    assert OLD_CALLER.encode() not in raw and OLD_CALLER[1:].encode() not in raw
    assert NEW_CALLER.encode() in raw  # the scan does find what is still there


def test_deleted_calls_are_crypto_erased_with_their_conversions(box):
    box.set(call_days=60, call_expiry="delete")
    old, new = box.call(100, OLD_CALLER), box.call(10, NEW_CALLER)
    with box.sessions() as session:
        recording = session.get(Recording, old)
        wrapped, sealed = recording.wrapped_key, recording.file_name
    store = load(box.config).recordings.store_dir

    assert box.job().apply(NOW).removed[box.account]["calls deleted"] == 1

    assert box.count(Call.id, Call.id == old) == 0 and box.count(Call.id, Call.id == new) == 1
    assert box.count(Conversion.id, Conversion.call_id == old) == 0
    assert box.count(Transcript.call_id, Transcript.call_id == old) == 0
    assert not (Path(store) / sealed).exists()
    assert box.count(AuditEntry.id, AuditEntry.action == "recording.delete") == 1
    raw = box.raw_bytes()
    assert wrapped.encode() not in raw and OLD_CALLER.encode() not in raw


def test_held_calls_and_the_accounts_hold_keep_everything(box):
    box.set(transcript_days=30, call_days=60, call_expiry="delete", recording_days=60)
    held = box.call(500, OLD_CALLER, held=True)
    box.set(legal_hold_days=120)
    within_hold = box.call(100, NEW_CALLER)
    past_hold = box.call(200, "+13125550222")

    result = box.job().apply(NOW)

    assert result.removed[box.account] == {"recordings": 1, "calls deleted": 1}
    with box.sessions() as session:
        for kept in (held, within_hold):
            assert session.get(Call, kept).caller_number is not None
            assert session.get(Recording, kept) and session.get(Transcript, kept)
            assert session.get(CallAnalysis, kept)
            assert box.count(Conversion.id, Conversion.call_id == kept) == 1
        assert session.get(Call, past_hold) is None


def test_the_quota_never_deletes_a_held_call(box):
    held = box.call(30, OLD_CALLER, held=True)
    older, newer = box.call(20, NEW_CALLER), box.call(10, "+13125550222")
    box.call(5, "+13125550333")
    box.set(recording_quota_mb=0)  # nothing fits: only what is held survives
    box.job().apply(NOW)
    with box.sessions() as session:
        assert session.get(Recording, held) is not None
        assert session.get(Recording, older) is None and session.get(Recording, newer) is None


def test_a_dry_run_removes_nothing_and_says_what_would_go(box, run):
    box.set(call_days=60, visit_days=90)
    box.call(100, OLD_CALLER), box.visit(100)
    code, out, err = run("--config", box.config, "retention", "apply", "--dry-run")
    assert code == 0, err
    assert f"would remove: account {box.account}: calls anonymised 1, visits 1" in out
    assert box.count(Call.id, Call.caller_number == OLD_CALLER) == 1
    code, out, _ = run("--config", box.config, "retention", "apply")
    assert f"removed: account {box.account}: calls anonymised 1, visits 1" in out
    code, out, _ = run("--config", box.config, "retention", "apply")
    assert "removed: nothing expired" in out


def test_the_audit_log_keeps_its_minimum_and_a_held_accounts_entries(box):
    with box.sessions.begin() as session:
        for account_id, days in ((None, 800), (box.account, 800), (box.account, 100)):
            session.add(
                AuditEntry(
                    at=NOW - dt.timedelta(days=days), actor="t", action="old",
                    account_id=account_id,
                )
            )  # fmt: skip
    box.set(legal_hold_days=1000, call_days=None, visit_days=None, lead_days=None,
            delivery_days=None)  # fmt: skip
    assert box.job(audit_days=730).apply(NOW).removed[None] == {"audit entries": 1}
    box.set(legal_hold_days=None)
    assert box.job(audit_days=730).apply(NOW).removed[None] == {"audit entries": 1}
    assert box.count(AuditEntry.id, AuditEntry.action == "old") == 1


def test_old_lines_of_unreconciled_cdr_files_go(box, tmp_path):
    cdr_dir = tmp_path / "cdr"
    cdr_dir.mkdir()
    old, new = (NOW - dt.timedelta(days=40)).timestamp(), (NOW - dt.timedelta(days=1)).timestamp()

    def line(linkedid: str, at: float) -> str:
        return (f'{linkedid},{linkedid},PJSIP/t-1,n|r|no||,{OLD_CALLER},"A" <{OLD_CALLER}>,,'
                f"Hangup,,{at},{at},{at},ANSWERED\n")  # fmt: skip

    mixed = cdr_dir / "appliance.csv.1"
    mixed.write_text(line("1.1", old) + line("1.2", new))
    only_old = cdr_dir / "appliance.csv.2"
    only_old.write_text(line("2.1", old) + "garbage without a time\n")
    live = cdr_dir / "appliance.csv"
    live.write_text(line("3.1", old))

    result = box.job(cdr_dir=cdr_dir, log_days=30).apply(NOW)

    assert result.removed[None] == {"CDR lines": 2}  # the garbage line is as new as its file
    assert mixed.read_text() == line("1.2", new)
    assert only_old.read_text() == "garbage without a time\n"
    assert live.read_text() == line("3.1", old)  # Asterisk's own file is never touched


def test_the_command_line_sets_shows_and_holds(box, run):
    code, out, err = run(
        "--config", box.config, "retention", "set", box.account,
        "--calls", "400", "--call-expiry", "delete", "--transcripts", "forever",
        "--visits", "365", "--deliveries", "365",
    )  # fmt: skip
    assert code == 0, err
    assert "  calls: 400 days" in out and "  expired calls: deleted" in out
    assert "Dentist <b>&</b>" in out  # printed as text: a terminal shows it as it is
    code, out, err = run("--config", box.config, "hold", "account", box.account, "--days", "365")
    assert (code, out) == (
        0,
        f"account {box.account}: legal hold 365 days: nothing younger is removed\n",
    )
    call_id = box.call(10, NEW_CALLER, recorded=False)
    assert run("--config", box.config, "hold", "call", call_id)[0] == 0
    assert box.count(Call.id, Call.legal_hold.is_(True)) == 1
    assert run("--config", box.config, "hold", "call", call_id, "--release")[0] == 0
    assert box.count(Call.id, Call.legal_hold.is_(True)) == 0
    code, out, _ = run("--config", box.config, "retention", "show", box.account)
    assert "  legal hold: 365 days" in out and "  transcripts: forever" in out
    with box.sessions() as session:
        actions = set(
            session.scalars(select(AuditEntry.action).where(AuditEntry.actor.like("cli:%")))
        )
        details = " ".join(
            session.scalars(select(AuditEntry.detail).where(AuditEntry.detail.is_not(None)))
        )
    assert {"retention.set", "hold.call", "hold.call.release"} <= actions
    assert NEW_CALLER not in details


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("retention", "set", "{a}", "--calls", "20"),
            "calls: 20 days is shorter than the legal hold of 30 days",
        ),
        (
            ("hold", "account", "{a}", "--days", "1000"),
            "calls: 730 days is shorter than the legal hold of 1000 days",
        ),
        (
            ("account", "limits", "{a}", "--days", "20"),
            "recordings: 20 days is shorter than the legal hold of 30 days",
        ),
        (
            ("retention", "set", "{a}", "--visits", "0"),
            "visits: at least 1 day ('forever' keeps them)",
        ),
        (
            ("retention", "set", "{a}", "--calls", "ten"),
            "'ten' is not a number of days or 'forever'",
        ),
        (("retention", "set", "{a}"), "nothing to change: give at least one option"),
        (
            ("retention", "set", "{a}", "--calls", "999999"),
            "calls: at most 36500 days, or 'forever'",
        ),
        (("hold", "account", "{a}", "--days", "999999"), "legal hold: 1 to 36500 days"),
        (("retention", "set", "99999", "--calls", "800"), "no account with id 99999"),
        (("hold", "call", "<script>nosuch"), "no such call"),
    ],
)
def test_refusals_are_one_line_and_change_nothing(box, run, args, line):
    assert run("--config", box.config, "hold", "account", box.account, "--days", "30")[0] == 0
    with box.sessions() as session:
        before = session.get(Account, box.account).__dict__.copy()
    code, out, err = run("--config", box.config, *(a.format(a=box.account) for a in args))
    assert (code, out, err) == (2, "", f"appliance: {line}\n")
    with box.sessions() as session:
        after = session.get(Account, box.account).__dict__
        assert {k: after[k] for k in before if not k.startswith("_")} == {
            k: v for k, v in before.items() if not k.startswith("_")
        }


@pytest.mark.parametrize(
    ("days", "ok"), [("0", True), ("365", True), ("364", False), ("-1", False), ("40000", False)]
)
def test_the_audit_log_has_its_own_minimum(tmp_path, days, ok):
    path = tmp_path / "a.ini"
    path.write_text(f"[paths]\ndata_dir = {tmp_path}\n[privacy]\naudit_days = {days}\n")
    if ok:
        assert load(path).privacy.audit_days == int(days)
        return
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert str(refused.value) == (
        "privacy.audit_days: at most 36500 days (0 keeps it for ever)"
        if days == "40000"
        else f"privacy.audit_days: {days} is below the minimum of 365 days (0 keeps the audit "
        "log for ever)"
    )


def test_a_run_interrupted_half_way_is_finished_by_the_next(box, monkeypatch):
    from appliance.privacy import retention_job

    monkeypatch.setattr(retention_job, "BATCH", 2)
    box.set(call_days=60, call_expiry="delete")
    old = [box.call(100 + i, f"+1312555090{i}") for i in range(5)]
    erase = box.vault.delete
    erased: list[str] = []

    def failing(call_id: str, actor: str, forget_now: bool = True) -> None:
        if len(erased) == 3:
            raise OSError("disk went away")
        erased.append(call_id)
        erase(call_id, actor, forget_now)

    monkeypatch.setattr(box.vault, "delete", failing)
    box.job().apply(NOW)  # the account's run stops there (logged); other accounts' go on
    assert 0 < box.count(Call.id, Call.id.in_(old)) < 5  # the first batch is gone for good
    monkeypatch.setattr(box.vault, "delete", erase)
    box.job().apply(NOW)
    assert box.count(Call.id, Call.id.in_(old)) == 0
    assert box.count(Recording.call_id) == 0


def test_one_accounts_bad_setting_does_not_stop_the_others(box):
    """A value from before the limits existed (or written by hand) fails that account only."""
    with box.sessions.begin() as session:
        other = admin.add_account(session, "Other", None).id
        session.execute(
            update(Account).where(Account.id == other).values(call_days=10**6, recording_days=10**6)
        )
    box.set(call_days=60, recording_days=60)  # fmt: skip
    old = box.call(100, OLD_CALLER)
    report = box.job().apply(NOW)
    with box.sessions() as session:
        assert session.get(Call, old).caller_number is None  # anonymised all the same
        assert session.get(Recording, old) is None
    assert report.removed[box.account]["calls anonymised"] == 1


def test_calls_no_account_owns_go_by_the_agencys_settings(box):
    with box.sessions.begin() as session:
        agency = admin.default_account(session).id
    box.set(call_days=None)
    with box.sessions.begin() as session:
        session.execute(
            update(Account).where(Account.id == agency).values(call_days=60, recording_days=60)
        )
    old = box.call(100, OLD_CALLER)  # fmt: skip
    with box.sessions.begin() as session:
        session.execute(update(Call).where(Call.id == old).values(account_id=None))
    box.job().apply(NOW)
    with box.sessions() as session:
        call = session.get(Call, old)
        assert call.caller_number is None and call.anonymised_at is not None
        assert session.get(Recording, old) is None  # the agency's recording days
    assert OLD_CALLER.encode() not in box.raw_bytes()
