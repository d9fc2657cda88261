"""The persistent job queue on SQLite and on a real PostgreSQL: a job queued once per kind and
key, claimed by exactly one of several worker processes racing for it, done in the same
transaction as its work, retried with backoff, parked (at once when the failure is
permanent), taken over after its worker was killed mid-job and finished once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from sqlalchemy import select

from appliance.db.engine import make_engine, session_factory
from appliance.db.models import Job, Source
from appliance.jobs import queue
from appliance.jobs.runner import Runner, Slow
from tests.harness import wait_for
from tests.made_once import migrated


@pytest.fixture
def url(database_url):
    engine = migrated(database_url)
    engine.dispose()
    return database_url


@pytest.fixture
def sessions(url):
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()


def states(sessions) -> dict[str, tuple[str, int]]:
    with sessions() as session:
        return {j.key: (j.state, j.attempts) for j in session.scalars(select(Job))}


def test_a_job_is_queued_once_and_again_only_when_asked(sessions):
    with sessions.begin() as session:
        queue.enqueue(session, "k", "a")
        queue.enqueue(session, "k", "a")
        queue.enqueue(session, "other", "a")
    with sessions() as session:
        assert len(session.scalars(select(Job)).all()) == 2
    runner = Runner(sessions, {"k": lambda s, key: None}, "w1")
    (job,) = runner.claim()
    assert runner.execute(job)
    with sessions.begin() as session:
        queue.enqueue(session, "k", "a")  # done: stays done
    assert runner.claim() == []
    with sessions.begin() as session:
        queue.enqueue(session, "k", "a", again=True)
    assert [j.key for j in runner.claim()] == ["a"]


def _race(url: str, worker: str, out) -> None:
    engine = make_engine(url)
    sessions = session_factory(engine)
    mine = []
    while True:
        with sessions.begin() as session:
            claimed = queue.claim(session, ["race"], worker, 60, time.time(), limit=3)
        if not claimed:
            break
        mine += [c.key for c in claimed]
    out.put(mine)
    engine.dispose()


def test_workers_racing_for_jobs_each_get_different_ones(url, sessions):
    with sessions.begin() as session:
        for i in range(300):
            queue.enqueue(session, "race", str(i))
    out: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_race, args=(url, f"w{i}", out)) for i in range(4)]
    for worker in workers:
        worker.start()
    taken = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    every = [key for keys in taken for key in keys]
    assert sorted(every, key=int) == [str(i) for i in range(300)]  # each once, none lost
    assert sum(1 for keys in taken if keys) >= 2  # they really raced


def test_the_work_and_its_done_mark_are_one_transaction(sessions):
    def work(session, key):
        session.add(Source(account_id=1, name=f"from job {key}"))  # no account 1: refused
        session.flush()

    runner = Runner(sessions, {"k": work}, "w1")
    with sessions.begin() as session:
        queue.enqueue(session, "k", "a")
    (job,) = runner.claim()
    assert not runner.execute(job)
    assert states(sessions) == {"a": ("queued", 1)}  # to be tried again after its backoff
    with sessions() as session:
        assert session.scalars(select(Source)).all() == []


def test_failures_back_off_then_park_and_permanent_ones_park_at_once(sessions):
    def broken(session, key):
        if key == "corrupt":
            raise queue.Permanent("the recording is corrupt")
        raise RuntimeError("the far end is down")

    runner = Runner(sessions, {"k": broken}, "w1")
    with sessions.begin() as session:
        queue.enqueue(session, "k", "flaky")
        queue.enqueue(session, "k", "corrupt")
    now = time.time()
    for attempt in range(1, queue.MAX_ATTEMPTS + 1):
        with sessions.begin() as session:
            claimed = queue.claim(session, ["k"], "w1", 60, now)
        for job in claimed:
            runner.execute(job)
        if attempt == 1:
            assert states(sessions) == {"flaky": ("queued", 1), "corrupt": ("parked", 1)}
            with sessions.begin() as session:  # not before its backoff
                assert queue.claim(session, ["k"], "w1", 60, now + 29) == []
        now += 6 * 3600 + 1
    assert states(sessions)["flaky"] == ("parked", queue.MAX_ATTEMPTS)
    with sessions() as session:
        errors = {j.key: j.last_error for j in session.scalars(select(Job))}
    assert errors == {
        "flaky": "RuntimeError: the far end is down",
        "corrupt": "the recording is corrupt",
    }
    with sessions.begin() as session:
        job_id = session.scalar(select(Job.id).where(Job.key == "corrupt"))
        queue.retry(session, job_id)
    assert states(sessions)["corrupt"] == ("queued", 0)


def test_a_job_whose_lease_ended_is_taken_over_and_the_late_worker_keeps_nothing(sessions):
    with sessions.begin() as session:
        queue.enqueue(session, "k", "a")
        (first,) = queue.claim(session, ["k"], "slow", 10, time.time())
    with sessions.begin() as session:
        assert queue.claim(session, ["k"], "quick", 10, time.time()) == []  # still leased
        (second,) = queue.claim(session, ["k"], "quick", 10, time.time() + 11)
    assert second.id == first.id and second.attempts == 2
    with pytest.raises(queue.LeaseLost), sessions.begin() as session:
        queue.finish(session, first.id, "slow", time.time())
    with sessions.begin() as session:
        queue.finish(session, second.id, "quick", time.time())
    assert states(sessions) == {"a": ("done", 2)}


def test_slow_work_keeps_its_lease_while_it_runs_and_is_saved_with_the_done_mark(sessions):
    """Work longer than its lease, done outside any transaction: the worker renews the lease
    meanwhile, so no other worker takes the job; the result is saved as the job is finished."""
    with sessions.begin() as session:
        queue.enqueue(session, "slow", "a")
    stolen: list[list[queue.Claimed]] = []

    def work(key: str) -> str:
        deadline = time.time() + 4.5  # more than twice the lease of 2 s
        while time.time() < deadline:
            with sessions.begin() as session:
                stolen.append(queue.claim(session, ["slow"], "thief", 1, time.time()))
            time.sleep(0.3)
        return key.upper()

    def save(session, key: str, result: str) -> None:
        queue.enqueue(session, "made", result)  # what the work made, stored with the done mark

    runner = Runner(sessions, {"slow": Slow(work, save)}, "worker", lease=2)
    (job,) = runner.claim()
    assert runner.execute(job)
    assert not [c for c in stolen if c], "the job was taken while its worker was alive"
    assert states(sessions) == {"a": ("done", 1), "A": ("queued", 0)}


def test_a_stopping_worker_gives_its_job_back_untried(sessions):
    with sessions.begin() as session:
        queue.enqueue(session, "slow", "a")

    def interrupted(key: str) -> None:
        raise InterruptedError("stopping")

    runner = Runner(sessions, {"slow": Slow(interrupted, lambda *_: None)}, "worker")
    (job,) = runner.claim()
    assert not runner.execute(job)
    assert states(sessions) == {"a": ("queued", 0)}
    assert runner.failed == 0


WORKER = textwrap.dedent(
    """
    import sys, time
    from appliance.db.engine import make_engine, session_factory
    from appliance.db.models import Source
    from appliance.jobs.runner import Runner, Slow

    def slow(session, key):
        print("working", flush=True)
        time.sleep(60)

    runner = Runner(session_factory(make_engine(sys.argv[1])), {"k": slow}, "doomed", lease=1)
    (job,) = runner.claim()
    runner.execute(job)
    """
)


def test_a_worker_killed_mid_job_leaves_it_to_be_retried_and_finished_once(url, sessions):
    with sessions.begin() as session:
        queue.enqueue(session, "k", "a")
    doomed = subprocess.Popen(
        [sys.executable, "-c", WORKER, url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert doomed.stdout.readline().strip() == "working"
    assert states(sessions) == {"a": ("running", 1)}
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    done = []
    runner = Runner(sessions, {"k": lambda s, key: done.append(key)}, "survivor", lease=2)

    def finished() -> bool:
        for job in runner.claim():
            runner.execute(job)
        return states(sessions)["a"][0] == "done"

    wait_for(finished, timeout=10, what="the job taken over after its lease")
    assert done == ["a"] and states(sessions) == {"a": ("done", 2)}


async def test_parked_jobs_are_shown_to_those_who_read_the_configuration(world, client):
    from tests.web_world import Browser

    with world.sessions.begin() as session:
        session.add(
            Job(kind="conversions.call", key="c1", state="parked", attempts=10,
                last_error="<script>alert(1)</script> the far end is down")
        )  # fmt: skip
        session.add(Job(kind="conversions.call", key="c2"))
    analyst = Browser(client)
    await analyst.sign_in("analyst")
    response, body = await analyst.get("/status")
    assert response.status == 200
    assert "1 waiting, 0 running" in body and "1 parked" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; the far end is down" in body
    viewer = Browser(client)
    await viewer.sign_in("viewer-a")
    response, _ = await viewer.get("/status")
    assert response.status == 403


def test_finished_jobs_are_forgotten_after_a_week(sessions):
    import datetime as dt

    now = time.time()
    with sessions.begin() as session:
        for key, state, days in (
            ("old", "done", 8),
            ("recent", "done", 6),
            ("waiting", "queued", 9),
        ):
            finished = dt.datetime.fromtimestamp(now - days * 86400, dt.UTC)
            session.add(Job(kind="k", key=key, state=state, finished_at=finished))
    with sessions.begin() as session:
        assert queue.purge(session, now) == 1
    assert sorted(states(sessions)) == ["recent", "waiting"]


def test_slow_work_past_its_time_limit_fails_and_its_worker_is_told(sessions):
    with sessions.begin() as session:
        queue.enqueue(session, "slow", "a")
    told = threading.Event()

    def hangs(key: str) -> None:
        assert told.wait(30), "the overrun was never signalled"

    runner = Runner(
        sessions, {"slow": Slow(hangs, lambda *_: None)}, "worker", lease=0.3,
        time_limit=0.5, overrun=told.set,
    )  # fmt: skip
    (job,) = runner.claim()
    assert not runner.execute(job)  # its failure was recorded; finishing now finds it gone
    with sessions() as session:
        (found,) = session.scalars(select(Job)).all()
    assert (found.state, found.attempts) == ("queued", 1)
    assert found.last_error is not None and found.last_error.startswith("took longer than")
