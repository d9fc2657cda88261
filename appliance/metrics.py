"""Prometheus metrics, served at /metrics to box administrators: a thin adapter over what the
controller already knows. Nothing here is on a call's way.

Where each number comes from:
- recordings sealed, refused or failed, and how long sealing took: the event seam
  (RecordingSealed, RecordingFailed), counted in this process since it started;
- requests the admin UI refused: its refusal log (web/refusals.py), since it started;
- calls in progress and whether AMI is connected: read from the call tracker and the AMI
  client on the event loop when a scrape begins (`observe_live`);
- calls by disposition and job queue depths: read from the database when scraped (the web
  side's thread pool runs the scrape, as it runs every other query of the web side);
- disk use and free space: statvfs of the data dir, the recordings store and the spool.

Labels hold only fixed words (a disposition, a job kind or state, a volume name, a reason):
never a phone number, a name, an account or anything else a caller or a tenant typed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from appliance.calls.log import DISPOSITIONS
from appliance.db.models import Call, Job
from appliance.events import EventBus, RecordingFailed, RecordingSealed

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# the sweeper looks every second; a recording that waits minutes was stuck
SEAL_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
JOB_STATES = ("queued", "running", "parked")  # done jobs are not waiting: not a depth
FAILURES = ("refused", "error")


def call_family(counts: Mapping[str, int]) -> CounterMetricFamily:
    """Every disposition, zero when no call had it yet (so rate() works from the start)."""
    family = CounterMetricFamily(
        "appliance_calls",
        "Finished calls on record, by disposition (all accounts of this appliance's database).",
        labels=["disposition"],
    )
    for disposition in DISPOSITIONS:
        family.add_metric([disposition], counts.get(disposition, 0))
    return family


def job_family(depths: Iterable[tuple[str, str, int]]) -> GaugeMetricFamily:
    """(kind, state, count) rows; every waiting state of each kind seen, zero included."""
    found = {(kind, state): count for kind, state, count in depths}
    family = GaugeMetricFamily(
        "appliance_jobs",
        "Persistent jobs waiting, running or parked, by kind and state.",
        labels=["kind", "state"],
    )
    for kind in sorted({kind for kind, _ in found}):
        for state in JOB_STATES:
            family.add_metric([kind, state], found.get((kind, state), 0))
    return family


def disk_families(
    usage: Mapping[str, tuple[int, int]],
) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    """volume -> (used, free) bytes of the file system holding it."""
    used = GaugeMetricFamily(
        "appliance_disk_used_bytes",
        "Bytes in use on the file system holding each volume (data, recordings, spool).",
        labels=["volume"],
    )
    free = GaugeMetricFamily(
        "appliance_disk_free_bytes",
        "Bytes the appliance may still write on the file system holding each volume.",
        labels=["volume"],
    )
    for volume, (in_use, left) in sorted(usage.items()):
        used.add_metric([volume], in_use)
        free.add_metric([volume], left)
    return used, free


def disk_usage(path: Path) -> tuple[int, int]:
    """(used, free to an unprivileged writer) bytes of the file system holding `path`, or that
    will hold it (the recordings store is made with the first recording)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_bavail * st.f_frsize


class DatabaseCollector:
    """Calls by disposition and job queue depths, read when scraped.

    Calls are counted from the database rather than by a counter fed by CallFinished: the
    database is the record. It holds the calls reconciled from Asterisk's CDRs after the
    controller was down (they never pass through the event seam), it survives restarts, and
    call rows are never deleted, so the count only grows, as a counter must. On PostgreSQL
    shared by several appliances, each reports the same totals: do not add them up."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily(
            "appliance_database_up", "Whether the last scrape could read the database (0/1)."
        )
        try:
            with self.sessions() as session:
                calls = _call_counts(session)
                jobs = _job_depths(session)
        except Exception:
            log.exception("metrics: the database could not be read")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield call_family(calls)
        yield job_family(jobs)


def _call_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Call.disposition, func.count())
        .where(Call.disposition.is_not(None))
        .group_by(Call.disposition)
    ).all()
    return {str(disposition): int(count) for disposition, count in rows}


def _job_depths(session: Session) -> list[tuple[str, str, int]]:
    rows = session.execute(
        select(Job.kind, Job.state, func.count())
        .where(Job.state.in_(JOB_STATES))
        .group_by(Job.kind, Job.state)
    ).all()
    return [(str(kind), str(state), int(count)) for kind, state, count in rows]


class DiskCollector:
    """Disk use of each volume, read when scraped; a volume that cannot be read is left out."""

    def __init__(self, volumes: Mapping[str, Path]) -> None:
        self.volumes = dict(volumes)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        usage: dict[str, tuple[int, int]] = {}
        for volume, path in self.volumes.items():
            try:
                usage[volume] = disk_usage(path)
            except OSError as exc:
                log.warning("metrics: %s volume %s unreadable: %s", volume, path, exc.strerror)
        if usage:
            yield from disk_families(usage)


class Metrics:
    """The appliance's metrics in a registry of their own (never the process-wide default
    registry, so no other library's metrics and no other test's leak in)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        volumes: Mapping[str, Path] | None = None,
        active_calls: Callable[[], int] | None = None,
        ami_connected: Callable[[], bool] | None = None,
    ) -> None:
        disable_created_metrics()  # no `_created` twin of every counter: the process is ours
        self.registry = CollectorRegistry()
        self.active_calls = active_calls
        self.ami_connected = ami_connected
        self.sealed = Counter(
            "appliance_recordings_sealed",
            "Recordings sealed since the controller started.",
            registry=self.registry,
        )
        self.failed = Counter(
            "appliance_recordings_failed",
            "Spool files refused (reason=refused) or not sealable for now (reason=error, "
            "once until sealed or gone) since the controller started.",
            ["reason"],
            registry=self.registry,
        )
        for reason in FAILURES:
            self.failed.labels(reason)
        self.seal_seconds = Histogram(
            "appliance_recording_seal_seconds",
            "Seconds from a recording's last write (its call's end) until it was sealed.",
            buckets=SEAL_BUCKETS,
            registry=self.registry,
        )
        self.requests_refused = Counter(
            "appliance_requests_refused",
            "Requests the admin UI and API refused (401, 403, 404, 405, 429) since the "
            "controller started; the audit log keeps them, a client's beyond 30 a minute as a "
            "count.",
            registry=self.registry,
        )
        self.live_gauges = self._live_gauges()
        collectors: list[Collector] = [DatabaseCollector(sessions)]
        if volumes:
            collectors.append(DiskCollector(volumes))
        for collector in collectors:
            self.registry.register(collector)

    def _live_gauges(self) -> list[tuple[Gauge, Callable[[], float]]]:
        gauges: list[tuple[Gauge, Callable[[], float]]] = []
        if self.active_calls is not None:
            active = Gauge(
                "appliance_active_calls", "Calls in progress now.", registry=self.registry
            )
            gauges.append((active, self.active_calls))
        if self.ami_connected is not None:
            connected = Gauge(
                "appliance_ami_connected",
                "Whether the controller is logged in to Asterisk's manager interface (0/1).",
                registry=self.registry,
            )
            gauges.append((connected, self.ami_connected))
        return gauges

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(RecordingSealed, self.on_sealed)
        bus.subscribe(RecordingFailed, self.on_failed)

    def on_sealed(self, event: RecordingSealed) -> None:
        self.sealed.inc()
        self.seal_seconds.observe(max(0.0, event.latency))

    def on_failed(self, event: RecordingFailed) -> None:
        self.failed.labels(event.reason if event.reason in FAILURES else "error").inc()

    def observe_live(self) -> None:
        """Read the call tracker and the AMI client: on the event loop, which owns them."""
        for gauge, read in self.live_gauges:
            gauge.set(float(read()))

    def exposition(self) -> bytes:
        """The text format; blocking (database, statvfs): run it off the event loop."""
        return generate_latest(self.registry)
