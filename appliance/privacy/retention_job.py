"""The daily retention job: applies every account's retention (privacy/retention.py) to each
kind of its data, and the box's own limits to the audit log and Asterisk's CDR files.

It works in batches, each committed as it goes, so an interrupted run is finished by the next.
Recordings are crypto-erased by the vault, never by a bare row delete. On SQLite the WAL is
checkpointed and truncated afterwards (secure_delete overwrote the freed pages), so nothing
removed stays readable in the database's files. What it removed is reported per account and
kind of data: in the log and the audit log, as counts only."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit
from appliance.db.forget import forget
from appliance.db.models import (
    Account,
    AuditEntry,
    Call,
    CallAnalysis,
    CallNote,
    Conversion,
    Delivery,
    Destination,
    Lead,
    NumberHold,
    Recording,
    Transcript,
    TranscriptTurn,
    Visit,
    VisitPage,
)
from appliance.privacy import cdr_files, retention
from appliance.recordings.limits import RetentionJob
from appliance.recordings.vault import RecordingNotFound, RecordingVault
from appliance.transcription import search

# every table whose rows the job removes or rewrites: their old copies go too (db/forget.py)
TOUCHED = (
    "audit_log",
    "call_analyses",
    "calls",
    "conversions",
    "deliveries",
    "leads",
    "number_holds",
    "recordings",
    "transcript_turns",
    "transcripts",
    "visit_pages",
    "visits",
)

log = logging.getLogger(__name__)

BATCH = 500
ACTOR = "retention"
KINDS = (
    "recordings",
    "transcripts",
    "calls anonymised",
    "calls deleted",
    "visits",
    "leads",
    "deliveries",
)

WORDS_GO = ("transcripts", "recordings", "calls deleted")  # kinds that take transcripts along


@dataclass
class Report:
    """What a run removed (or, dry, would remove): account id (None: the box's own logs) ->
    kind of data -> how many."""

    removed: dict[int | None, Counter[str]] = field(default_factory=dict)

    def add(self, account_id: int | None, kind: str, count: int) -> None:
        if count:
            self.removed.setdefault(account_id, Counter())[kind] += count

    def line(self, account_id: int | None) -> str:
        counts = self.removed.get(account_id, Counter())
        return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "nothing"

    def lines(self) -> list[str]:
        if not self.removed:
            return ["nothing expired"]
        return [
            f"{'the box' if a is None else f'account {a}'}: {self.line(a)}"
            for a in sorted(self.removed, key=lambda a: -1 if a is None else a)
        ]


Ids = Select[Any]  # the ids of the rows of one kind of data that expire
Query = Callable[[retention.Policy, int | None, dt.datetime], Ids | None]


class PrivacyRetention:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: RecordingVault,
        cdr_dir: Path | None = None,
        log_days: int = 0,
        audit_days: int = 0,
        interval: float = 86400.0,
    ) -> None:
        self.sessions = sessions
        self.vault = vault
        self.cdr_dir = cdr_dir
        self.log_days = log_days
        self.audit_days = audit_days
        self.interval = interval
        self.recordings = RetentionJob(sessions, vault)
        self.kinds: dict[str, tuple[Query, Callable[[Sequence[object]], None]]] = {
            "transcripts": (_transcripts, self._drop_transcripts),
            "calls anonymised": (_calls_to_anonymise, self._anonymise),
            "calls deleted": (_calls_to_delete, self._delete_calls),
            "visits": (_visits, self._drop_visits),
            "leads": (_leads, self._drop_leads),
            "deliveries": (_deliveries, self._drop_deliveries),
        }

    def apply(self, now: dt.datetime | None = None, dry_run: bool = False) -> Report:
        now = now or dt.datetime.now(dt.UTC)
        report = Report()
        verdicts = self.recordings.judge(now)
        for account_id, verdict in verdicts.items():
            report.add(account_id, "recordings", len(verdict.delete))
        if not dry_run:
            self.recordings.apply(now)
        with self.sessions() as session:
            accounts = session.scalars(select(Account).order_by(Account.id)).all()
            policies = [(a.id, retention.of(a)) for a in accounts]
            # calls to numbers no account owns (released, unknown) go by the agency's settings
            unowned = [(None, retention.of(a)) for a in accounts if a.parent_id is None][:1]
        for owner, policy in [*policies, *unowned]:
            try:
                for kind, (query, remove) in self.kinds.items():
                    found = query(policy, owner, now)
                    if found is not None:
                        report.add(owner, kind, self._run(found, remove, dry_run))
            except Exception:  # one account's trouble never stops the others'
                log.exception("retention of account %s failed; the others go on", owner)
        report.add(None, "audit entries", self._audit(policies, now, dry_run))
        if self.cdr_dir is not None and self.log_days:
            cutoff = (now - dt.timedelta(days=self.log_days)).timestamp()
            report.add(None, "CDR lines", cdr_files.prune(self.cdr_dir, cutoff, dry_run))
        if not dry_run:
            self._finish(report)
        return report

    def _run(self, found: Ids, remove: Callable[[Sequence[object]], None], dry: bool) -> int:
        if dry:
            with self.sessions() as session:
                return session.scalar(select(func.count()).select_from(found.subquery())) or 0
        done = 0
        while True:
            with self.sessions() as session:
                ids = session.scalars(found.limit(BATCH)).all()
            if not ids:
                return done
            remove(ids)
            done += len(ids)

    # removing, a batch at a time -------------------------------------------------------------
    def _drop_transcripts(self, ids: Sequence[object]) -> None:
        with self.sessions.begin() as session:
            for table in (CallAnalysis, TranscriptTurn, Transcript):
                session.execute(delete(table).where(table.call_id.in_(ids)))

    def _anonymise(self, ids: Sequence[object]) -> None:
        """The caller's number and name go, and the integrators' notes (free text that may
        name the caller); tags and the score adjustment stay for reports."""
        with self.sessions.begin() as session:
            session.execute(delete(CallNote).where(CallNote.call_id.in_(ids)))
            session.execute(
                update(Call)
                .where(Call.id.in_(ids))
                .values(caller_number=None, caller_name=None, anonymised_at=dt.datetime.now(dt.UTC))
            )

    def _delete_calls(self, ids: Sequence[object]) -> None:
        with self.sessions() as session:
            recorded = session.scalars(select(Recording.call_id).where(Recording.call_id.in_(ids)))
            recorded_ids = list(recorded)
        for call_id in recorded_ids:  # crypto-erasure first: the wrapped key, then the file
            try:
                self.vault.delete(call_id, actor=ACTOR, forget_now=False)
            except RecordingNotFound:
                continue
        with self.sessions.begin() as session:
            session.execute(delete(Conversion).where(Conversion.call_id.in_(ids)))
            session.execute(delete(Call).where(Call.id.in_(ids)))

    def _drop_visits(self, ids: Sequence[object]) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(NumberHold).where(NumberHold.visit_id.in_(ids)))
            session.execute(delete(VisitPage).where(VisitPage.visit_id.in_(ids)))
            session.execute(delete(Visit).where(Visit.id.in_(ids)))

    def _drop_leads(self, ids: Sequence[object]) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(Conversion).where(Conversion.lead_id.in_(ids)))
            session.execute(delete(Lead).where(Lead.id.in_(ids)))

    def _drop_deliveries(self, ids: Sequence[object]) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(Delivery).where(Delivery.id.in_(ids)))

    def _drop_audit(self, ids: Sequence[object]) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(AuditEntry).where(AuditEntry.id.in_(ids)))

    def _audit(
        self, policies: list[tuple[int, retention.Policy]], now: dt.datetime, dry: bool
    ) -> int:
        """The audit log's own limit; an account's legal hold keeps its entries longer."""
        base = retention.audit_cutoff(self.audit_days, None, now)
        if base is None:
            return 0
        holding = {a: p.legal_hold_days for a, p in policies if p.legal_hold_days}
        found = select(AuditEntry.id).where(
            AuditEntry.at < base,
            AuditEntry.account_id.is_(None) | AuditEntry.account_id.not_in(sorted(holding)),
        )
        count = self._run(found, self._drop_audit, dry)
        for account_id, days in holding.items():
            cutoff = retention.audit_cutoff(self.audit_days, days, now)
            held = select(AuditEntry.id).where(
                AuditEntry.account_id == account_id, AuditEntry.at < cutoff
            )
            count += self._run(held, self._drop_audit, dry)
        return count

    def _finish(self, report: Report) -> None:
        """Report what went, then leave nothing of it in SQLite's files."""
        with self.sessions.begin() as session:
            for account_id in report.removed:
                line = report.line(account_id)
                log.info(
                    "retention: %s", line if account_id is None else f"account {account_id}: {line}"
                )
                audit.record(
                    session,
                    ACTOR,
                    "retention.apply",
                    None if account_id is None else str(account_id),
                    detail=line,
                    account_id=account_id,
                )
            if any(c[k] for c in report.removed.values() for k in WORDS_GO):
                search.compact(session)  # the words of removed transcripts leave the index
        forget(self.sessions.kw["bind"], TOUCHED)


# what expires, per kind of data: the ids of the rows to remove --------------------------------
def _call_ids(policy: retention.Policy, account_id: int | None, cutoff: dt.datetime) -> Ids:
    owner = Call.account_id.is_(None) if account_id is None else Call.account_id == account_id
    return select(Call.id).where(owner, Call.started_at < cutoff, Call.legal_hold.is_(False))


def _transcripts(policy: retention.Policy, account_id: int | None, now: dt.datetime) -> Ids | None:
    cutoff = retention.cutoff(policy.transcript_days, policy, now)
    if cutoff is None:
        return None
    calls = _call_ids(policy, account_id, cutoff)
    return select(Transcript.call_id).where(Transcript.call_id.in_(calls))


def _calls_to_anonymise(
    policy: retention.Policy, account_id: int | None, now: dt.datetime
) -> Ids | None:
    cutoff = retention.cutoff(policy.call_days, policy, now)
    if cutoff is None or policy.call_expiry != "anonymise":
        return None
    return _call_ids(policy, account_id, cutoff).where(Call.anonymised_at.is_(None))


def _calls_to_delete(
    policy: retention.Policy, account_id: int | None, now: dt.datetime
) -> Ids | None:
    cutoff = retention.cutoff(policy.call_days, policy, now)
    if cutoff is None or policy.call_expiry != "delete":
        return None
    return _call_ids(policy, account_id, cutoff)


def _visits(policy: retention.Policy, account_id: int | None, now: dt.datetime) -> Ids | None:
    cutoff = retention.cutoff(policy.visit_days, policy, now)
    if cutoff is None or account_id is None:  # only calls can be without an account
        return None
    held = select(Call.visit_id).where(Call.legal_hold.is_(True), Call.visit_id.is_not(None))
    return select(Visit.id).where(
        Visit.account_id == account_id, Visit.last_seen_at < cutoff, Visit.id.not_in(held)
    )


def _leads(policy: retention.Policy, account_id: int | None, now: dt.datetime) -> Ids | None:
    cutoff = retention.cutoff(policy.lead_days, policy, now)
    if cutoff is None or account_id is None:  # only calls can be without an account
        return None
    return select(Lead.id).where(Lead.account_id == account_id, Lead.created_at < cutoff)


def _deliveries(policy: retention.Policy, account_id: int | None, now: dt.datetime) -> Ids | None:
    """Delivered and parked ones; a pending one is still on its way (the outbox parks it
    after its last try, and the next run removes it)."""
    cutoff = retention.cutoff(policy.delivery_days, policy, now)
    if cutoff is None or account_id is None:  # only calls can be without an account
        return None
    return (
        select(Delivery.id)
        .join(Destination, Destination.id == Delivery.destination_id)
        .where(
            Destination.account_id == account_id,
            Delivery.created_at < cutoff,
            Delivery.state != "pending",
        )
    )
