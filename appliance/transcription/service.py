"""Transcription as jobs: a sealed recording queues one (when transcription is on), a worker
process decrypts the recording in memory, has its decoder (a locked process of its own:
appliance/transcription/decoder.py) decode both channels, and stores the words and the
dialogue with the job marked done."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from appliance.config import Config, key_passphrase, redaction_patterns
from appliance.conversions import call_events
from appliance.db.models import Call, Job, Recording, Transcript, TranscriptTurn
from appliance.jobs import queue
from appliance.jobs.runner import Slow
from appliance.recordings import vault as vaults
from appliance.recordings.container import RecordingError
from appliance.transcription import dialogue, models, redact
from appliance.transcription.decoder import Decoder
from appliance.transcription.words import Word

log = logging.getLogger(__name__)

KIND = "transcribe.call"
ANALYSE = "analyse.call"  # appliance/transcription/analysis_store.py does it
ACTOR = "transcriber"
RATES = {vaults.AUDIO_FORMAT: vaults.RATE}
READ_ONLY_STORE = (
    "transcription.redact_audio: the workers may not write the recordings in {} (their unit "
    "keeps them read-only); give them a drop-in that lists ReadOnlyPaths= again without that "
    "folder (systemctl edit appliance-transcriber; see the admin guide). The transcript is "
    "stored once the recording is redacted"
)


def chosen_model(config: Config) -> models.Model | None:
    """The model transcription uses, or None (transcription is then off)."""
    if not config.transcription.enabled:
        return None
    found = models.installed(Path(config.transcription.model_dir))
    if config.transcription.model:
        found = [m for m in found if m.name == config.transcription.model]
    return found[0] if found else None


def off_reason(config: Config) -> str | None:
    """Why calls are not transcribed, in a line for an admin; None when they are."""
    if not config.transcription.enabled:
        return "transcription is turned off (transcription.enabled)"
    try:
        chosen = chosen_model(config)
    except OSError as exc:
        return f"the model directory cannot be read ({exc.strerror})"
    if chosen is None:
        wanted = f"model {config.transcription.model!r}" if config.transcription.model else "model"
        return f"no {wanted} is installed (appliance models install ARCHIVE or NAME)"
    return None


def grammar(config: Config) -> list[str] | None:
    phrases = [p.strip() for p in config.transcription.grammar.split(",") if p.strip()]
    return phrases or None


def worker_count(config: Config) -> int:
    return config.transcription.workers or os.cpu_count() or 1


class Queuer:
    """Called in the transaction that stores a sealed recording: queue its transcription when
    transcription is on. Whether it is on is looked up at most every `every` seconds."""

    def __init__(self, config: Config, every: float = 10.0) -> None:
        self.config = config
        self.every = every
        self._checked = -every
        self._on = False
        self._lock = threading.Lock()

    def on(self, now: float) -> bool:
        with self._lock:
            if now - self._checked >= self.every:  # a model directory that cannot be read
                self._on = off_reason(self.config) is None  # turns transcription off, not calls
                self._checked = now
            return self._on

    def __call__(self, session: Session, call_id: str, now: float) -> None:
        if self.on(now) and not restricted(session, call_id):
            queue.enqueue(session, KIND, call_id)


def restricted(session: Session, call_id: str) -> bool:
    """A call whose caller is on the restrict list is never transcribed (nor analysed), even
    when it has a recording (made before the number was listed)."""
    return bool(session.scalar(select(Call.restricted).where(Call.id == call_id)))


@dataclass(frozen=True)
class Result:
    model: str
    seconds: float
    words: list[Word]


class Transcriber:
    """One worker's transcription: its decoder (with the model loaded once) decodes, the
    worker decrypts and stores; `handler` is its job."""

    def __init__(
        self, config: Config, sessions: sessionmaker[Session], model: models.Model
    ) -> None:
        self.sessions = sessions
        self.vault = vaults.RecordingVault(
            sessions,
            Path(config.recordings.store_dir),
            Path(config.recordings.key_file),
            key_passphrase(config),
        )
        self.decoder = Decoder(model.path, grammar(config))
        self.redact = config.transcription.redact
        self.redact_audio = config.transcription.redact_audio
        self.patterns = redaction_patterns(config)
        self.stopping = threading.Event()

    @property
    def handler(self) -> Slow:
        return Slow(self.work, self.save)

    def work(self, call_id: str) -> Result | None:
        with self.sessions() as session:
            audio_format = session.scalar(
                select(Recording.audio_format).where(Recording.call_id == call_id)
            )
            if restricted(session, call_id):
                return None  # queued before its caller was restricted
        if audio_format is None:
            return None  # erased meanwhile: nothing to transcribe
        rate = RATES.get(audio_format)
        if rate is None:
            raise queue.Permanent(f"recordings in {audio_format!r} cannot be transcribed")
        try:
            with self.vault.open(call_id, ACTOR, "recording.transcribe") as recording:
                words = self.decoder.transcribe(
                    recording.read(), rate, lambda: not self.stopping.is_set()
                )
                seconds = recording.size / vaults.BYTES_PER_SECOND
        except vaults.RecordingNotFound:
            return None
        except RecordingError as exc:
            raise queue.Permanent(f"the recording cannot be read: {exc}") from None
        if self.redact or self.patterns:
            words, spans = redact.redact(words, self.patterns, numbers=self.redact)
            if spans and self.redact_audio:
                said = f"{len(spans)} passage(s): {', '.join(sorted({s.label for s in spans}))}"
                try:
                    self.vault.reseal(call_id, redact.tone_over(spans, rate), ACTOR, said)
                except vaults.RecordingNotFound:
                    return None  # erased meanwhile
                except OSError as exc:
                    if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                        raise
                    raise PermissionError(READ_ONLY_STORE.format(self.vault.store_dir)) from None
        return Result(self.decoder.name, round(seconds, 3), words)

    def save(self, session: Session, call_id: str, result: Result | None) -> None:
        if result is not None and session.get(Recording, call_id) is not None:
            store(session, call_id, result)


def store(session: Session, call_id: str, result: Result) -> None:
    """The transcript of a recorded call, replacing any earlier one; its analysis is queued,
    and transcript.ready for the call's first transcript (a redone one is not news)."""
    first = session.get(Transcript, call_id) is None
    session.execute(delete(Transcript).where(Transcript.call_id == call_id))
    session.add(
        Transcript(
            call_id=call_id,
            model=result.model,
            seconds=result.seconds,
            words=json.dumps([w.as_row() for w in result.words], ensure_ascii=False),
            turns=[
                TranscriptTurn(speaker=t.speaker, start=t.start, end=t.end, text=t.text)
                for t in dialogue.turns(result.words)
            ],
        )
    )
    queue.enqueue(session, ANALYSE, call_id, again=True)
    if first:
        call_events.transcript_ready(session, call_id, result.model, result.seconds)


@dataclass(frozen=True)
class Progress:
    state: str  # off, queued, running, done, parked, none
    detail: str | None = None


def progress(session: Session, call_id: str) -> Progress:
    """Where the transcription of one call is (the job's state, or done if only the transcript
    is left after the job was forgotten)."""
    job = session.scalar(select(Job).where(Job.kind == KIND, Job.key == call_id))
    if job is not None:
        return Progress(job.state, job.last_error)
    if session.get(Transcript, call_id) is not None:
        return Progress("done")
    return Progress("none")


def queue_recordings(session: Session, call_ids: list[str], again: bool = False) -> int:
    """Queue the transcription of these calls' recordings (default: every recording that has
    no transcript yet); `again` also redoes finished and parked ones. How many were queued."""
    if call_ids:
        have = set(
            session.scalars(select(Recording.call_id).where(Recording.call_id.in_(call_ids)))
        )
        missing = [c for c in call_ids if c not in have]
        if missing:
            raise LookupError(f"no recording for call {missing[0][:40]!r}")
        refused = [c for c in call_ids if restricted(session, c)]
        if refused:
            raise LookupError(f"call {refused[0]} is restricted: its caller is never transcribed")
    wanted = select(Recording.call_id).join(Call, Call.id == Recording.call_id)
    wanted = wanted.where(Call.restricted.is_(False))
    if call_ids:
        wanted = wanted.where(Recording.call_id.in_(call_ids))
    if not again:
        wanted = wanted.where(~Recording.call_id.in_(select(Transcript.call_id)))
    return queue.enqueue_all(session, KIND, list(session.scalars(wanted)), again=True)


@dataclass(frozen=True)
class TranscriptView:
    call_id: str
    model: str
    seconds: float
    words: list[Word]
    turns: list[dialogue.Turn]


def read(session: Session, call_id: str) -> TranscriptView | None:
    """A call's transcript for display (the caller checks access and audits it)."""
    found = session.get(Transcript, call_id)
    if found is None:
        return None
    words = [Word.from_row(row) for row in json.loads(found.words)]
    return TranscriptView(call_id, found.model, found.seconds, words, dialogue.turns(words))
