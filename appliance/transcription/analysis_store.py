"""Analysis as jobs, and the phrase rules: a stored transcript queues its call's analysis, a
rule added or removed queues the analysis of every transcribed call it may change (so that
re-running analysis is a job, never a code change)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from appliance import audit
from appliance.config import Config
from appliance.db.models import Account, AnalysisRule, Call, CallAnalysis, Transcript
from appliance.jobs import queue
from appliance.plugins import hooks
from appliance.plugins.manager import PluginManager
from appliance.transcription import analysis, service
from appliance.transcription.words import Word

KIND = service.ANALYSE
TAG = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
MAX_PHRASES, MAX_PHRASE = 50, 100


class RuleError(ValueError):
    """A rule that cannot be kept; the message says why."""


def weights(config: Config) -> analysis.Weights:
    c = config.analysis
    return analysis.Weights(c.answered, c.first_time, c.talk_per_minute, c.talk_max, c.spam)


def _scope(session: Session, account_id: int | None) -> list[int]:
    """The accounts whose rules apply to a call of `account_id`: it and its agency."""
    if account_id is None:
        return list(session.scalars(select(Account.id).where(Account.parent_id.is_(None))))
    account = session.get(Account, account_id)
    if account is None:
        return []
    return [account.id] + ([account.parent_id] if account.parent_id is not None else [])


def rules_for(session: Session, account_id: int | None) -> list[analysis.Rule]:
    rows = session.scalars(
        select(AnalysisRule)
        .where(AnalysisRule.account_id.in_(_scope(session, account_id)))
        .order_by(AnalysisRule.id)
    )
    return [
        analysis.Rule(r.tag, tuple(r.phrases.splitlines()), r.speaker, r.points, r.category)
        for r in rows
    ]


def handlers(
    weights: analysis.Weights, plugins: PluginManager | None = None
) -> dict[str, Callable[[Session, str], object]]:
    def analyse(session: Session, call_id: str) -> None:
        transcript = session.get(Transcript, call_id)
        call = session.get(Call, call_id)
        if transcript is None or call is None:
            return  # erased meanwhile
        if call.restricted:
            return  # its caller is on the restrict list: never analysed
        words = [Word.from_row(row) for row in json.loads(transcript.words)]
        facts = analysis.Facts(
            answered=call.disposition == "answered",
            talk_seconds=call.talk_seconds,
            first_time=call.first_time,
            seconds=transcript.seconds,
        )
        found = analysis.analyse(words, facts, rules_for(session, call.account_id), weights)
        session.execute(delete(CallAnalysis).where(CallAnalysis.call_id == call_id))
        session.add(
            CallAnalysis(
                call_id=call_id,
                score=found.score,
                category=found.category,
                tags=json.dumps(list(found.tags), ensure_ascii=False),
                spam=found.spam,
                details=json.dumps(_details(found), ensure_ascii=False),
            )
        )
        if plugins is not None:
            session.flush()
            hooks.after_analysis(plugins, session, call, transcript, found)

    return {KIND: analyse}


def _details(found: analysis.Analysis) -> dict[str, Any]:
    return {
        "hits": [asdict(h) for h in found.hits],
        "trace": [asdict(s) for s in found.trace],
        "summary": [
            {"speaker": t.speaker, "start": t.start, "text": t.text} for t in found.summary
        ],
        "caller_seconds": found.caller_seconds,
        "answerer_seconds": found.answerer_seconds,
        "longest_silence": found.longest_silence,
        "spam_reasons": list(found.spam_reasons),
    }


def requeue(session: Session, account_id: int) -> int:
    """Analyse again every transcribed call a rule of this account applies to (its own, and
    its clients' when it is an agency); how many."""
    account = session.get(Account, account_id)
    if account is None:
        return 0
    clients = select(Account.id).where(Account.parent_id == account_id)
    applies = or_(Call.account_id == account_id, Call.account_id.in_(clients))
    if account.parent_id is None:  # an agency's rules also cover calls of no account
        applies = or_(applies, Call.account_id.is_(None))
    wanted = (
        select(Transcript.call_id)
        .join(Call, Call.id == Transcript.call_id)
        .where(applies, Call.restricted.is_(False))
    )
    return queue.enqueue_all(session, KIND, list(session.scalars(wanted)), again=True)


@dataclass(frozen=True)
class RuleRequest:
    tag: str
    phrases: list[str]
    speaker: str = "any"
    points: int = 0
    category: str | None = None


def checked(request: RuleRequest) -> RuleRequest:
    tag = request.tag.strip().lower()
    if not TAG.fullmatch(tag):
        raise RuleError("tag: 1 to 40 lower-case letters, digits, - and _, e.g. appointment")
    phrases = [" ".join(p.split()) for p in request.phrases if p.strip()]
    if not phrases or len(phrases) > MAX_PHRASES:
        raise RuleError(f"phrases: 1 to {MAX_PHRASES}")
    for phrase in phrases:
        if len(phrase) > MAX_PHRASE or not analysis.normalise(phrase):
            raise RuleError(f"phrase {phrase[:40]!r}: words, at most {MAX_PHRASE} characters")
        if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in phrase):
            raise RuleError("phrases may not hold control characters")
    if request.speaker not in analysis.SPEAKER_NAMES:
        raise RuleError("speaker: any, caller or answerer")
    if not -100 <= request.points <= 100:
        raise RuleError("points: -100 to 100")
    category = (request.category or "").strip().lower() or None
    if category is not None and not TAG.fullmatch(category):
        raise RuleError("category: 1 to 40 lower-case letters, digits, - and _, e.g. sales")
    return RuleRequest(tag, phrases, request.speaker, request.points, category)


def add_rule(session: Session, account_id: int, request: RuleRequest, actor: str) -> int:
    """Add or replace the rule for this tag; how many calls are queued to be analysed again."""
    rule = checked(request)
    session.execute(
        delete(AnalysisRule).where(
            AnalysisRule.account_id == account_id, AnalysisRule.tag == rule.tag
        )
    )
    session.add(
        AnalysisRule(
            account_id=account_id,
            tag=rule.tag,
            phrases="\n".join(rule.phrases),
            speaker=rule.speaker,
            points=rule.points,
            category=rule.category,
        )
    )
    audit.record(session, actor, "analysis.rule", rule.tag, account_id=account_id,
                 detail=f"{len(rule.phrases)} phrase(s), {rule.points:+d} points")  # fmt: skip
    return requeue(session, account_id)


def remove_rule(session: Session, account_id: int, tag: str, actor: str) -> int:
    gone = session.execute(
        delete(AnalysisRule).where(AnalysisRule.account_id == account_id, AnalysisRule.tag == tag)
    )
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise RuleError(f"no rule for the tag {tag[:40]!r} in this account")
    audit.record(session, actor, "analysis.rule.remove", tag, account_id=account_id)
    return requeue(session, account_id)


@dataclass(frozen=True)
class AnalysisView:
    score: int
    category: str | None
    tags: list[str]
    spam: bool
    details: dict[str, Any]


def read(session: Session, call_id: str) -> AnalysisView | None:
    row = session.get(CallAnalysis, call_id)
    if row is None:
        return None
    return AnalysisView(
        row.score, row.category, json.loads(row.tags), row.spam, json.loads(row.details)
    )
