"""The metrics adapter: families built from plain values, counters fed by the event seam, and
the spool sweeper's events that feed them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, Counter
from prometheus_client.parser import text_string_to_metric_families

from appliance.events import EventBus, RecordingFailed, RecordingSealed
from appliance.metrics import (
    DiskCollector,
    Metrics,
    call_family,
    disk_families,
    disk_usage,
    job_family,
)
from appliance.recordings.spool import SpoolSweeper
from appliance.recordings.spool_files import done_name, raw_name
from appliance.recordings.vault import Sealed, SpoolFileRefused


def parsed(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    """sample name -> [(labels, value)] of one scrape, through Prometheus' own parser."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(samples: dict, name: str, **labels: str) -> float:
    (match,) = [v for found, v in samples[name] if found == labels]
    return match


def unreadable_database():
    raise OSError("database is down")


def test_every_disposition_is_counted_zero_included():
    family = call_family({"answered": 3, "busy": 1})
    counts = {s.labels["disposition"]: s.value for s in family.samples}
    assert counts == {"answered": 3, "no_answer": 0, "busy": 1, "failed": 0, "abandoned": 0}
    assert family.type == "counter" and family.name == "appliance_calls"


def test_job_depths_cover_every_waiting_state_of_each_kind():
    family = job_family([("transcribe", "queued", 4), ("conversions", "parked", 1)])
    depths = {(s.labels["kind"], s.labels["state"]): s.value for s in family.samples}
    assert depths == {
        ("conversions", "queued"): 0,
        ("conversions", "running"): 0,
        ("conversions", "parked"): 1,
        ("transcribe", "queued"): 4,
        ("transcribe", "running"): 0,
        ("transcribe", "parked"): 0,
    }


def test_disk_families_and_a_real_file_system(tmp_path):
    used, free = disk_usage(tmp_path)
    st = os.statvfs(tmp_path)
    assert 0 < used <= st.f_blocks * st.f_frsize and 0 <= free <= st.f_blocks * st.f_frsize
    in_use, left = disk_families({"spool": (10, 20), "data": (1, 2)})
    assert [(s.labels, s.value) for s in in_use.samples] == [
        ({"volume": "data"}, 1),
        ({"volume": "spool"}, 10),
    ]
    assert [s.value for s in left.samples] == [2, 20]


def test_a_volume_not_made_yet_is_measured_where_it_will_be(tmp_path, monkeypatch):
    asked = []
    real = os.statvfs
    monkeypatch.setattr(os, "statvfs", lambda path: asked.append(path) or real(path))
    disk_usage(tmp_path / "store" / "2026")
    assert asked == [tmp_path]


def test_a_volume_that_cannot_be_read_is_left_out(tmp_path, monkeypatch):
    def statvfs(path):
        if Path(path).name == "spool":
            raise PermissionError(13, "Permission denied")
        return real(path)

    real = os.statvfs
    monkeypatch.setattr(os, "statvfs", statvfs)
    (tmp_path / "spool").mkdir()
    collector = DiskCollector({"data": tmp_path, "spool": tmp_path / "spool"})
    families = list(collector.collect())
    assert {s.labels["volume"] for f in families for s in f.samples} == {"data"}


def test_sealed_and_failed_recordings_come_from_the_event_seam():
    bus = EventBus()
    metrics = Metrics(unreadable_database)  # type: ignore[arg-type]
    metrics.subscribe(bus)
    before = parsed(metrics)
    assert value(before, "appliance_recordings_sealed_total") == 0
    assert value(before, "appliance_recordings_failed_total", reason="refused") == 0
    assert value(before, "appliance_recordings_failed_total", reason="error") == 0
    bus.emit(RecordingSealed("c1", "1.1", 12.0, latency=0.4))
    bus.emit(RecordingSealed("c2", "2.1", 3.0, latency=45.0))
    bus.emit(RecordingFailed("3.1", "refused"))
    bus.emit(RecordingFailed("4.1", "error"))
    bus.emit(RecordingFailed("5.1", "something new"))  # never a free-text label
    after = parsed(metrics)
    assert value(after, "appliance_recordings_sealed_total") == 2
    assert value(after, "appliance_recordings_failed_total", reason="refused") == 1
    assert value(after, "appliance_recordings_failed_total", reason="error") == 2
    assert value(after, "appliance_recording_seal_seconds_count") == 2
    assert value(after, "appliance_recording_seal_seconds_sum") == pytest.approx(45.4)
    assert value(after, "appliance_recording_seal_seconds_bucket", le="0.5") == 1
    assert value(after, "appliance_recording_seal_seconds_bucket", le="60.0") == 2


def test_an_unreadable_database_is_a_metric_not_a_failed_scrape():
    samples = parsed(Metrics(unreadable_database))  # type: ignore[arg-type]
    assert value(samples, "appliance_database_up") == 0
    assert "appliance_calls_total" not in samples


def test_live_gauges_are_read_when_asked_and_only_then():
    state = {"calls": 2, "ami": True}
    metrics = Metrics(
        unreadable_database,  # type: ignore[arg-type]
        active_calls=lambda: state["calls"],
        ami_connected=lambda: state["ami"],
    )
    metrics.observe_live()
    state.update(calls=5, ami=False)
    samples = parsed(metrics)
    assert value(samples, "appliance_active_calls") == 2
    assert value(samples, "appliance_ami_connected") == 1
    metrics.observe_live()
    samples = parsed(metrics)
    assert value(samples, "appliance_active_calls") == 5
    assert value(samples, "appliance_ami_connected") == 0


def test_nothing_of_the_default_registry_leaks_in():
    leak = Counter("test_leak_from_elsewhere", "a metric of another library", registry=REGISTRY)
    try:
        leak.inc()
        text = Metrics(unreadable_database).exposition().decode()  # type: ignore[arg-type]
    finally:
        REGISTRY.unregister(leak)
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names and all(name.startswith("appliance_") for name in names)
    for family in text_string_to_metric_families(text):
        assert family.documentation, family.name


class FakeVault:
    """Seals, refuses or fails as told."""

    def __init__(self, outcome: BaseException | None) -> None:
        self.outcome = outcome

    def seal(self, path: Path, linkedid: str) -> Sealed:
        if self.outcome is not None:
            raise self.outcome
        written = path.stat().st_mtime
        path.unlink()
        path.with_name(done_name(linkedid)).unlink()
        return Sealed("c" * 32, "f.rec", 16000, 0.5, written)


async def no_calls() -> set[str]:
    return set()


def spooled(spool: Path, linkedid: str, age: float = 0.0) -> None:
    raw = spool / raw_name(linkedid)
    raw.write_bytes(b"\0" * 16000)
    then = time.time() - age
    os.utime(raw, (then, then))
    (spool / done_name(linkedid)).touch()


def heard(bus: EventBus) -> list[object]:
    events: list[object] = []
    bus.subscribe(RecordingSealed, events.append)
    bus.subscribe(RecordingFailed, events.append)
    return events


async def test_the_sweeper_says_how_long_a_recording_waited(tmp_path):
    bus = EventBus()
    events = heard(bus)
    spooled(tmp_path, "1.1", age=30.0)
    sweeper = SpoolSweeper(FakeVault(None), tmp_path, no_calls, bus)  # type: ignore[arg-type]
    assert await sweeper.sweep() == 1
    (event,) = events
    assert isinstance(event, RecordingSealed) and 30.0 <= event.latency < 3600


async def test_a_recording_that_keeps_failing_is_counted_once(tmp_path):
    bus = EventBus()
    events = heard(bus)
    spooled(tmp_path, "1.1")
    vault = FakeVault(OSError(28, "No space left on device"))
    sweeper = SpoolSweeper(vault, tmp_path, no_calls, bus)  # type: ignore[arg-type]
    for _ in range(3):
        await sweeper.sweep()
    assert events == [RecordingFailed("1.1", "error")]
    vault.outcome = None  # space again: sealed, and a later failure would count anew
    await sweeper.sweep()
    assert [type(e) for e in events] == [RecordingFailed, RecordingSealed]


async def test_each_refused_spool_file_is_counted(tmp_path):
    bus = EventBus()
    events = heard(bus)
    spooled(tmp_path, "1.1")
    refusal = SpoolFileRefused("a symbolic link", removed=True, subject="1.1", identity=None)
    sweeper = SpoolSweeper(FakeVault(refusal), tmp_path, no_calls, bus)  # type: ignore[arg-type]
    await sweeper.sweep()
    for name in (raw_name("1.1"), done_name("1.1")):  # as the vault removes what it refuses
        (tmp_path / name).unlink()
    spooled(tmp_path, "2.1")
    seen = os.lstat(tmp_path / raw_name("2.1"))
    kept = SpoolFileRefused(
        "too big", removed=False, subject="2.1", identity=(seen.st_dev, seen.st_ino)
    )
    sweeper.vault = FakeVault(kept)  # type: ignore[assignment]
    for _ in range(3):  # kept for an admin: refused once, not again at every sweep
        await sweeper.sweep()
    assert events == [RecordingFailed("1.1", "refused"), RecordingFailed("2.1", "refused")]
