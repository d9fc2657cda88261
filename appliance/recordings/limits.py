"""The recording limits: applies each account's storage limits (recordings/retention.py) once a
minute: old or excess recordings are erased, or recording pauses, and the admin is warned.
Legal holds are honoured; the daily privacy retention (privacy/retention_job.py) runs it too."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from appliance.db.forget import forget
from appliance.db.models import Account, Call, Recording
from appliance.privacy import retention
from appliance.recordings.retention import Limits, Stored, Verdict, judge
from appliance.recordings.vault import RecordingNotFound, RecordingVault

log = logging.getLogger(__name__)


class RetentionJob:
    def __init__(
        self, sessions: sessionmaker[Session], vault: RecordingVault, interval: float = 60.0
    ) -> None:
        self.sessions = sessions
        self.vault = vault
        self.interval = interval

    def apply(self, now: dt.datetime | None = None) -> dict[int, Verdict]:
        verdicts = self.judge(now or dt.datetime.now(dt.UTC))
        for account_id, verdict in verdicts.items():
            try:
                self._carry_out(account_id, verdict)
            except Exception:
                log.exception("recording limits of account %d failed", account_id)
        return verdicts

    def judge(self, now: dt.datetime) -> dict[int, Verdict]:
        """What each limited account's limits would do now; nothing is changed. A call under
        legal hold (its own, or its account's) counts towards the quota but is never removed."""
        verdicts = {}
        with self.sessions() as session:
            limited = session.scalars(
                select(Account).where(
                    or_(
                        Account.recording_quota_mb.is_not(None), Account.recording_days.is_not(None)
                    )
                )
            ).all()
            for account in limited:
                try:
                    verdicts[account.id] = self._judge(session, account, now)
                except Exception:  # one account's trouble never stops the others' limits
                    log.exception("recording limits of account %d failed", account.id)
        return verdicts

    def _judge(self, session: Session, account: Account, now: dt.datetime) -> Verdict:
        """The agency's limits also cover the recordings of calls no account owns."""
        owner = Call.account_id == account.id
        if account.parent_id is None:
            owner = or_(owner, Call.account_id.is_(None))
        limits = Limits(
            quota_bytes=account.recording_quota_mb * 1_000_000
            if account.recording_quota_mb is not None
            else None,
            days=account.recording_days,
            when_full=account.recording_when_full,
        )
        policy = retention.of(account)
        rows = session.execute(
            select(
                Recording.call_id,
                Recording.created_at,
                Recording.plaintext_bytes,
                Call.legal_hold,
            )
            .join(Call, Call.id == Recording.call_id)
            .where(owner)
        ).all()
        stored = [
            Stored(c, at, size, retention.held(at, hold, policy, now)) for c, at, size, hold in rows
        ]
        return judge(stored, limits, now)

    def _carry_out(self, account_id: int, verdict: Verdict) -> None:
        for call_id in verdict.delete:
            try:
                self.vault.delete(call_id, actor="retention", forget_now=False)
            except RecordingNotFound:
                continue
        if verdict.delete:
            forget(self.sessions.kw["bind"], ["recordings"])
            log.info(
                "account %d: %d recording(s) erased by its storage limits",
                account_id,
                len(verdict.delete),
            )
        with self.sessions.begin() as session:
            account = session.get(Account, account_id)
            if account is not None and account.recording_paused != verdict.paused:
                account.recording_paused = verdict.paused
                state = "paused: storage full" if verdict.paused else "resumed"
                log.warning("account %d: recording %s", account_id, state)
        if verdict.warn:
            log.warning(
                "ALERT account %d: recordings use %.1f MB, near or over its quota",
                account_id,
                verdict.used_bytes / 1_000_000,
            )
