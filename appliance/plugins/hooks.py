"""Hook calls made inside jobs (blocking, in the job's own transaction): transcript_ready and
analysis_done after a call's analysis; analysis_done's tags, points and note are saved as the
call's annotations with origin plugin:<name>."""

from __future__ import annotations

import json
import logging

from sqlalchemy.orm import Session

from appliance.calls import annotations as annotate
from appliance.db.models import Call, Transcript
from appliance.plugins import checks
from appliance.plugins.calldata import call_data
from appliance.plugins.manager import PluginManager
from appliance.transcription import analysis
from appliance.transcription.words import Word

log = logging.getLogger(__name__)


def after_analysis(
    plugins: PluginManager,
    session: Session,
    call: Call,
    transcript: Transcript,
    found: analysis.Analysis,
) -> None:
    data = call_data(call)
    if plugins.implemented("transcript_ready"):
        words = [Word.from_row(row) for row in json.loads(transcript.words)]
        text = " ".join(w.text for w in words)
        plugins.call(
            "transcript_ready",
            call=data,
            transcript={"text": text, "seconds": transcript.seconds, "words": len(words)},
        )
    if not plugins.implemented("analysis_done"):
        return
    result = {
        "score": found.score,
        "category": found.category,
        "tags": list(found.tags),
        "spam": found.spam,
    }
    for name, value in plugins.call("analysis_done", call=data, analysis=result):
        try:
            answer = checks.analysis_answer(value)
            with session.begin_nested():  # all of one plugin's answer, or none of it
                save(session, call.id, f"plugin:{name}", answer)
        except (checks.PluginValueError, annotate.AnnotationError) as exc:
            plugins.invalid(name, "analysis_done", str(exc))


def save(session: Session, call_id: str, origin: str, answer: checks.AnalysisAnswer) -> None:
    if answer.tags:
        annotate.add_tags(session, call_id, answer.tags, origin)
    if answer.points:
        annotate.adjust_score(session, call_id, answer.points)
    if answer.note:
        annotate.add_note(session, call_id, answer.note, origin)
