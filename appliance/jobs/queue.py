"""The persistent job queue, in the database: enqueue (once per kind and key), claim with a
lease, finish inside the work's own transaction, fail with backoff, park, retry.

Claiming is one UPDATE ... WHERE id IN (due jobs) RETURNING: atomic under SQLite's single
writer, and on PostgreSQL the due jobs are picked with FOR UPDATE SKIP LOCKED, so several
workers (processes, later hosts) never take the same job. A worker that dies leaves its job
`running` until the lease ends; the next claim takes it again, and one that has already been
tried MAX_ATTEMPTS times is parked instead (a job that kills its worker must not kill them
all)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from appliance.db.models import Job

MAX_ATTEMPTS = 10


class LeaseLost(Exception):
    """The job was claimed by another worker meanwhile: this worker's work is undone."""


class Permanent(Exception):
    """A failure that trying again cannot mend (a corrupt file, say): park the job now."""


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    key: str
    attempts: int


def backoff(attempts: int) -> float:
    """Seconds before the next try: 30 s, doubling, at most 6 hours."""
    return min(30.0 * 2 ** (attempts - 1), 6 * 3600.0)


def _utc(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, dt.UTC)


def enqueue(session: Session, kind: str, key: str, again: bool = False) -> None:
    """The job of this kind about this key, once; `again` queues a finished or parked one
    anew (e.g. analysis after its rules changed)."""
    job = session.scalar(select(Job).where(Job.kind == kind, Job.key == key))
    if job is None:
        session.add(Job(kind=kind, key=key))
        session.flush()
    elif again and job.state in ("done", "parked"):
        job.state, job.attempts, job.last_error = "queued", 0, None
        job.run_after = dt.datetime.now(dt.UTC)


def enqueue_all(session: Session, kind: str, keys: Iterable[str], again: bool = False) -> int:
    """`enqueue` each key; how many."""
    count = 0
    for key in keys:
        enqueue(session, kind, key, again)
        count += 1
    return count


def claim(
    session: Session, kinds: Iterable[str], worker: str, lease: float, now: float, limit: int = 10
) -> list[Claimed]:
    """Take up to `limit` due jobs of these kinds for `worker` until `lease` seconds from now."""
    moment = _utc(now)
    kinds = list(kinds)
    stale = and_(Job.state == "running", Job.claimed_until < moment)
    session.execute(  # died with its worker too often: parked, not tried again
        update(Job)
        .where(Job.kind.in_(kinds), stale, Job.attempts >= MAX_ATTEMPTS)
        .values(
            state="parked",
            claimed_by=None,
            claimed_until=None,
            last_error="its worker stopped while running it, every time it was tried",
        )
        .execution_options(synchronize_session=False)
    )
    due = (
        select(Job.id)
        .where(
            Job.kind.in_(kinds), or_(and_(Job.state == "queued", Job.run_after <= moment), stale)
        )
        .order_by(Job.run_after, Job.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(due.scalar_subquery()))
        .values(
            state="running",
            claimed_by=worker,
            claimed_until=moment + dt.timedelta(seconds=lease),
            attempts=Job.attempts + 1,
        )
        .returning(Job.id, Job.kind, Job.key, Job.attempts)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def finish(session: Session, job_id: int, worker: str, now: float) -> None:
    """Done, in the same transaction as the work: if the lease was lost, nothing is kept."""
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.claimed_by == worker, Job.state == "running")
        .values(state="done", finished_at=_utc(now), claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"job {job_id} is no longer this worker's")


def extend(session: Session, job_id: int, worker: str, lease: float, now: float) -> None:
    """Keep a long job's claim for another `lease` seconds (its worker is alive)."""
    kept = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.claimed_by == worker, Job.state == "running")
        .values(claimed_until=_utc(now + lease))
        .execution_options(synchronize_session=False)
    )
    if kept.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"job {job_id} is no longer this worker's")


def fail(
    session: Session, job_id: int, worker: str, error: str, now: float, final: bool = False
) -> str:
    """Try again after the backoff, or park; the job's new state."""
    job = session.get(Job, job_id)
    if job is None or job.claimed_by != worker or job.state != "running":
        return "lost"
    job.last_error = error[:500]
    job.claimed_by, job.claimed_until = None, None
    if final or job.attempts >= MAX_ATTEMPTS:
        job.state = "parked"
    else:
        job.state = "queued"
        job.run_after = _utc(now + backoff(job.attempts))
    return job.state


def release(session: Session, job_id: int, worker: str) -> None:
    """Give a job back untried (its worker is stopping): due again at once, the attempt not
    counted."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.claimed_by == worker, Job.state == "running")
        .values(
            state="queued",
            attempts=Job.attempts - 1,
            run_after=dt.datetime.now(dt.UTC),
            claimed_by=None,
            claimed_until=None,
        )
        .execution_options(synchronize_session=False)
    )


def retry(session: Session, job_id: int) -> Job:
    """A parked job is queued again now, with a fresh set of attempts."""
    job = session.get(Job, job_id)
    if job is None or job.state != "parked":
        raise ValueError(f"no parked job {job_id}")
    job.state, job.attempts, job.run_after = "queued", 0, dt.datetime.now(dt.UTC)
    return job


KEEP_DONE = 7 * 86400.0  # seconds a finished job is kept (its row says when it ran)


def purge(session: Session, now: float, keep: float = KEEP_DONE) -> int:
    """Forget jobs finished more than `keep` seconds ago; how many."""
    gone = session.execute(
        delete(Job)
        .where(Job.state == "done", Job.finished_at < _utc(now - keep))
        .execution_options(synchronize_session=False)
    )
    return int(gone.rowcount or 0)  # type: ignore[attr-defined]
