"""The core domain tables. Schema changes go through Alembic migrations, never create_all."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from appliance.vocabulary import RecordingMode, RingStrategy, Role, TargetKind, new_call_id, values


def _one_of(column: str, enum: type) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values(enum))
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A moment, stored in UTC on both databases and always read back with its zone (SQLite
    keeps none and would hand back naive datetimes). A naive value is taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else _in_utc(value)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        return None if value is None else _in_utc(value)


def _in_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    """An agency (parent_id is None) or one of its client sub-accounts."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recording_quota_mb: Mapped[int | None] = mapped_column(Integer)
    recording_days: Mapped[int | None] = mapped_column(Integer)
    recording_when_full: Mapped[str] = mapped_column(
        String(16), default="delete_oldest", server_default="delete_oldest"
    )
    recording_paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # white label: what an agency's clients (and its own users) see
    brand_name: Mapped[str | None] = mapped_column(String(80))
    brand_colour: Mapped[str | None] = mapped_column(String(7))
    brand_logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    brand_logo_type: Mapped[str | None] = mapped_column(String(16))
    # retention per data type, in days (None: kept until erased); see appliance/privacy/
    transcript_days: Mapped[int | None] = mapped_column(Integer)
    call_days: Mapped[int | None] = mapped_column(Integer)
    # what an expired call record becomes: 'anonymise' keeps it for the reports without the
    # caller's number and name; 'delete' removes it
    call_expiry: Mapped[str] = mapped_column(
        String(10), default="anonymise", server_default="anonymise"
    )
    visit_days: Mapped[int | None] = mapped_column(Integer)
    lead_days: Mapped[int | None] = mapped_column(Integer)
    delivery_days: Mapped[int | None] = mapped_column(Integer)
    # legal hold: nothing of the account younger than this many days is removed by retention,
    # and no retention setting may be shorter
    legal_hold_days: Mapped[int | None] = mapped_column(Integer)
    # account deletion: disabled from delete_requested_at, erased once erase_after has passed
    delete_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    erase_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    parent: Mapped[Account | None] = relationship(remote_side=[id])


class User(Base):
    __tablename__ = "users"
    __table_args__ = (_one_of("role", Role),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="analyst")
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # wrong answers (passwords, codes) from all networks since a quiet quarter hour (lockout.py)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    email: Mapped[str | None] = mapped_column(String(254))  # invitations, resets, alerts
    # the TOTP secret of the second sign-in step, sealed; the last time step used (no replay)
    totp_sealed: Mapped[str | None] = mapped_column(String(512))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    account: Mapped[Account] = relationship()


class Trunk(Base):
    """A SIP trunk: 'registration' (we register to the carrier) or 'ip' (carrier sends from IPs)."""

    __tablename__ = "trunks"
    __table_args__ = (CheckConstraint("kind IN ('registration', 'ip')", name="kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    username: Mapped[str | None] = mapped_column(String(128))
    password_sealed: Mapped[str | None] = mapped_column(String(512))
    match: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Endpoint(Base):
    """A desk or soft phone of the appliance: it registers with a generated password (sealed
    here) and can only receive calls."""

    __tablename__ = "endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str | None] = mapped_column(String(120))
    password_sealed: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Source(Base):
    """A marketing source, e.g. 'Google Ads' or 'Yellow pages'."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    medium: Mapped[str | None] = mapped_column(String(60))


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("source_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))


class Route(Base):
    """Where calls go: its targets ring all at once or one after another."""

    __tablename__ = "routes"
    __table_args__ = (
        _one_of("strategy", RingStrategy),
        CheckConstraint("ring_timeout BETWEEN 1 AND 600", name="ring_timeout"),
        _one_of("recording", RecordingMode),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    strategy: Mapped[str] = mapped_column(String(16), default="simultaneous")
    ring_timeout: Mapped[int] = mapped_column(Integer, default=30)
    recording: Mapped[str] = mapped_column(String(10), default="never", server_default="never")
    consent_prompt: Mapped[str | None] = mapped_column(String(100))
    consent_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    announcement: Mapped[str | None] = mapped_column(String(100))
    whisper: Mapped[str | None] = mapped_column(String(100))
    hours: Mapped[str | None] = mapped_column(String(500))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    after_hours_route_id: Mapped[int | None] = mapped_column(
        ForeignKey("routes.id", ondelete="SET NULL")
    )
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    dynamic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    targets: Mapped[list[RouteTarget]] = relationship(
        order_by="RouteTarget.position", cascade="all, delete-orphan"
    )


class RouteTarget(Base):
    """One destination of a route: an E.164 number reached over a trunk, or a SIP endpoint."""

    __tablename__ = "route_targets"
    __table_args__ = (_one_of("kind", TargetKind),)
    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("routes.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    trunk_id: Mapped[int | None] = mapped_column(ForeignKey("trunks.id", ondelete="SET NULL"))

    trunk: Mapped[Trunk | None] = relationship()


class TrackingNumber(Base):
    __tablename__ = "tracking_numbers"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    label: Mapped[str | None] = mapped_column(String(120))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    route_id: Mapped[int | None] = mapped_column(ForeignKey("routes.id", ondelete="SET NULL"))
    trunk_id: Mapped[int | None] = mapped_column(ForeignKey("trunks.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # a released number takes no calls; it stays so that its calls keep their attribution
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # in the number pool of a website: shown to one visitor session at a time
    pool_site_id: Mapped[int | None] = mapped_column(
        ForeignKey("dni_sites.id", ondelete="SET NULL"), index=True
    )

    route: Mapped[Route | None] = relationship()
    source: Mapped[Source | None] = relationship()


class Call(Base):
    """One inbound call: one row per Asterisk linkedid, under a random call id."""

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(
            "disposition IN ('answered', 'no_answer', 'busy', 'failed', 'abandoned')",
            name="disposition",
        ),
        Index("ix_calls_account_caller", "account_id", "caller_number"),
        # the call log: newest first, one tenant's or all, read a page at a time
        Index("ix_calls_account_started", "account_id", "started_at", "id"),
        Index("ix_calls_started", "started_at", "id"),
        # the dashboard reads days of calls from this index alone, by the source and campaign
        # each call came in with (a pool number's calls come from many sources)
        Index(
            "ix_calls_dashboard",
            "started_at",
            "account_id",
            "source_name",
            "campaign_name",
            "disposition",
            "first_time",
        ),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_call_id)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    tracking_number_id: Mapped[int | None] = mapped_column(
        ForeignKey("tracking_numbers.id", ondelete="SET NULL")
    )
    linkedid: Mapped[str | None] = mapped_column(String(64), unique=True)
    dialled: Mapped[str] = mapped_column(String(64))
    caller_number: Mapped[str | None] = mapped_column(String(64))
    caller_name: Mapped[str | None] = mapped_column(String(128))
    route_id: Mapped[int | None] = mapped_column(ForeignKey("routes.id", ondelete="SET NULL"))
    route_name: Mapped[str | None] = mapped_column(String(120))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disposition: Mapped[str | None] = mapped_column(String(16))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_party: Mapped[str | None] = mapped_column(String(8))
    answered_by: Mapped[str | None] = mapped_column(String(128))
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    first_time: Mapped[bool | None] = mapped_column(Boolean)
    after_hours: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # 'live': followed over AMI as it happened; 'reconciled': learnt from Asterisk's CDRs
    via: Mapped[str] = mapped_column(String(12), default="live", server_default="live")
    consent_announced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    recording_opted_out: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # the marketing that produced the call, as it stood when the call came in: a number that
    # changes source or campaign later does not rewrite history
    source_name: Mapped[str | None] = mapped_column(String(120))
    medium: Mapped[str | None] = mapped_column(String(60))
    campaign_name: Mapped[str | None] = mapped_column(String(120))
    # the website visit that showed the number, and how sure that is (see attribution/)
    visit_id: Mapped[str | None] = mapped_column(
        ForeignKey("visits.id", ondelete="SET NULL"), index=True
    )
    attribution: Mapped[str | None] = mapped_column(String(12))
    # consent evidence: the prompt played to the caller and when (consent_announced and
    # recording_opted_out above say what came of it)
    consent_prompt: Mapped[str | None] = mapped_column(String(100))
    consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # the caller asked not to be recorded, transcribed, analysed or sent to ad platforms
    restricted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # kept whatever the retention settings, until released
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # when retention or an erasure removed the caller's number and name from this record
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # points integrators (AGI `score`, plugins) added to or took from the lead score
    score_adjustment: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CallTag(Base):
    """A tag an integrator put on a call (AGI `tag`, a plugin); the analysis keeps its own."""

    __tablename__ = "call_tags"
    call_id: Mapped[str] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)
    origin: Mapped[str] = mapped_column(String(60))  # 'agi', 'plugin:<name>'
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CallNote(Base):
    """A note an integrator attached to a call (AGI `note`, a plugin): personal data, it goes
    with the call and is dropped when the call is anonymised."""

    __tablename__ = "call_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(1000))
    origin: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Recording(Base):
    """A sealed recording: where it is and its wrapped data key (deleting the row erases it)."""

    __tablename__ = "recordings"
    call_id: Mapped[str] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    file_name: Mapped[str] = mapped_column(String(255))
    file_id: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(16), index=True)
    wrapped_key: Mapped[str] = mapped_column(String(128))
    audio_format: Mapped[str] = mapped_column(String(32))
    plaintext_bytes: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Transcript(Base):
    """What was said on a recorded call: every word with its speaker, time and confidence,
    as JSON `[[speaker, start, end, confidence, word], ...]` in time order (speaker 0 is the
    caller, 1 the answering party). It goes with its recording (crypto-erasure included)."""

    __tablename__ = "transcripts"
    call_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.call_id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(100))
    seconds: Mapped[float] = mapped_column(Float)  # of audio transcribed
    words: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    turns: Mapped[list[TranscriptTurn]] = relationship(
        order_by="TranscriptTurn.start", cascade="all, delete-orphan", passive_deletes=True
    )


class TranscriptTurn(Base):
    """One speaker's turn in the dialogue: the unit full-text search finds and points into."""

    __tablename__ = "transcript_turns"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(
        ForeignKey("transcripts.call_id", ondelete="CASCADE"), index=True
    )
    speaker: Mapped[int] = mapped_column(Integer)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)


class AnalysisRule(Base):
    """An account's phrase rule: saying one of `phrases` (one per line) gives a call `tag`,
    `points` on its lead score and maybe a category. An agency's rules apply to its clients'
    calls too."""

    __tablename__ = "analysis_rules"
    __table_args__ = (
        UniqueConstraint("account_id", "tag", name="uq_analysis_rules_account_tag"),
        CheckConstraint("speaker IN ('any', 'caller', 'answerer')", name="speaker"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(40))
    phrases: Mapped[str] = mapped_column(Text)
    speaker: Mapped[str] = mapped_column(String(8), default="any")
    points: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CallAnalysis(Base):
    """What a transcribed call was about (appliance/transcription/analysis.py); `details` is
    JSON: the phrases found, the score's trace, the summary, the talk split. It goes with its
    transcript."""

    __tablename__ = "call_analyses"
    call_id: Mapped[str] = mapped_column(
        ForeignKey("transcripts.call_id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[int] = mapped_column(Integer, index=True)
    category: Mapped[str | None] = mapped_column(String(40))
    tags: Mapped[str] = mapped_column(Text)  # JSON list
    spam: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[str] = mapped_column(Text)
    analysed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEntry(Base):
    """Every sign-in, refused request, access to a recording and admin change."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(500))
    # whose data it concerns, so each tenant reads its own part of the log
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )


class ApiKey(Base):
    """A bearer token for the API; only its SHA-256 is stored. Its scopes narrow what its
    user's role allows."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    name: Mapped[str | None] = mapped_column(String(80))
    scopes: Mapped[str] = mapped_column(String(300), default="", server_default="")
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class UserLink(Base):
    """A link mailed to a user to set a password: an invitation or a reset. Random, used once,
    short-lived; only its SHA-256 is stored."""

    __tablename__ = "user_links"
    __table_args__ = (CheckConstraint("purpose IN ('invite', 'reset')", name="purpose"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A signed-in browser. The cookie holds a random id; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    client: Mapped[str | None] = mapped_column(String(64))
    # False until the second step (a TOTP code) is done, for users who have one
    verified: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    user: Mapped[User] = relationship()


class SigninFailure(Base):
    """Wrong answers in a row (passwords, codes) from one client network for one user, and the
    lock they earned: a network that keeps guessing is locked out of that user, no one else
    is (lockout.py)."""

    __tablename__ = "signin_failures"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    network: Mapped[str] = mapped_column(String(64), primary_key=True)  # ratelimit.client_key
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class DniSite(Base):
    """A website that shows tracking numbers (dynamic number insertion): the pages of its
    origins swap its own numbers for a number of its pool or of a matching rule."""

    __tablename__ = "dni_sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(32), unique=True)  # public, in the page's snippet
    origins: Mapped[str] = mapped_column(String(2000))  # space-separated https://host[:port]
    replace_numbers: Mapped[str] = mapped_column(String(500))  # the site's own, E.164, spaced
    consent_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    hold_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    forms: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    rules: Mapped[list[DniRule]] = relationship(
        order_by="DniRule.position", cascade="all, delete-orphan"
    )


class DniRule(Base):
    """Source-level swap: a visit whose `field` contains `value` sees `number_id`."""

    __tablename__ = "dni_rules"
    __table_args__ = (
        CheckConstraint(
            "field IN ('source', 'medium', 'campaign', 'referrer', 'landing')", name="field"
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("dni_sites.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    field: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200))
    number_id: Mapped[int] = mapped_column(ForeignKey("tracking_numbers.id", ondelete="CASCADE"))

    number: Mapped[TrackingNumber] = relationship()


class Visit(Base):
    """One visitor session on a site: what brought it, from its first page on. A visitor
    (the random id in the site's first-party cookie) starts a new session after `hold_minutes`
    of silence."""

    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_site_seen", "site_id", "last_seen_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("dni_sites.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    visitor: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    landing_page: Mapped[str] = mapped_column(String(2000))
    referrer: Mapped[str | None] = mapped_column(String(2000))
    source_name: Mapped[str] = mapped_column(String(120))
    medium: Mapped[str | None] = mapped_column(String(60))
    campaign_name: Mapped[str | None] = mapped_column(String(120))
    keyword: Mapped[str | None] = mapped_column(String(120))
    click_id_type: Mapped[str | None] = mapped_column(String(8))
    click_id: Mapped[str | None] = mapped_column(String(256))
    ip: Mapped[str | None] = mapped_column(String(64))  # truncated or hashed unless configured


class VisitPage(Base):
    """A page a visit showed, for the visitor timeline."""

    __tablename__ = "visit_pages"
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[str] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    url: Mapped[str] = mapped_column(String(2000))


class NumberHold(Base):
    """A pool number shown to one visit from `held_from`; it ends `hold_minutes` after the
    visit was last seen, or when the pool recycled it (`released_at`)."""

    __tablename__ = "number_holds"
    __table_args__ = (Index("ix_number_holds_number_from", "number_id", "held_from"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[str] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    number_id: Mapped[int] = mapped_column(ForeignKey("tracking_numbers.id", ondelete="CASCADE"))
    held_from: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    recycled: Mapped[bool] = mapped_column(Boolean, default=False)  # taken from another visit

    visit: Mapped[Visit] = relationship()


class Lead(Base):
    """A form submitted on a site, with the attribution of the visit that submitted it."""

    __tablename__ = "leads"
    __table_args__ = (Index("ix_leads_account_created", "account_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("dni_sites.id", ondelete="CASCADE"))
    visit_id: Mapped[str | None] = mapped_column(ForeignKey("visits.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    form: Mapped[str] = mapped_column(String(120))
    fields: Mapped[str] = mapped_column(Text)  # JSON object of name -> text
    page: Mapped[str | None] = mapped_column(String(2000))
    source_name: Mapped[str | None] = mapped_column(String(120))
    medium: Mapped[str | None] = mapped_column(String(60))
    campaign_name: Mapped[str | None] = mapped_column(String(120))


class ConversionRule(Base):
    """When a call or a lead counts as a conversion (every condition set must hold), under a
    name that ad platforms know it by, with a value."""

    __tablename__ = "conversion_rules"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        CheckConstraint("applies_to IN ('call', 'lead')", name="applies_to"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    applies_to: Mapped[str] = mapped_column(String(8), default="call")
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    min_talk_seconds: Mapped[int | None] = mapped_column(Integer)
    first_time: Mapped[bool] = mapped_column(Boolean, default=False)
    source_contains: Mapped[str | None] = mapped_column(String(120))
    form: Mapped[str | None] = mapped_column(String(60))
    value: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Conversion(Base):
    """A call or lead a rule turned into a conversion: once per rule and call or lead."""

    __tablename__ = "conversions"
    __table_args__ = (
        UniqueConstraint("rule_id", "call_id", name="uq_conversions_rule_call"),
        UniqueConstraint("rule_id", "lead_id", name="uq_conversions_rule_lead"),
        Index("ix_conversions_account_occurred", "account_id", "occurred_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversion_rules.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(100))
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    value: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    source_name: Mapped[str | None] = mapped_column(String(120))
    medium: Mapped[str | None] = mapped_column(String(60))
    campaign_name: Mapped[str | None] = mapped_column(String(120))
    click_id_type: Mapped[str | None] = mapped_column(String(8))
    click_id: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Destination(Base):
    """Where an account's events go: a signed webhook, or an ad platform's conversion API.
    Nothing leaves the box but to a destination an admin added."""

    __tablename__ = "destinations"
    __table_args__ = (
        CheckConstraint("kind IN ('webhook', 'google_ads', 'meta', 'microsoft')", name="kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(500))  # webhooks
    events: Mapped[str] = mapped_column(String(200), default="conversion.created")
    settings: Mapped[str] = mapped_column(Text, default="{}")  # JSON, never a secret
    secret_sealed: Mapped[str | None] = mapped_column(String(4000))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Delivery(Base):
    """One event on its way to a destination: the persistent outbox, with its attempts."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'parked')", name="state"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        Index("ix_deliveries_destination_created", "destination_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # the event, JSON; each destination shapes it
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class RestrictedNumber(Base):
    """A caller who asked an account not to be recorded, transcribed, analysed or sent to an
    ad platform: the compiled dialplan and every later step honour it."""

    __tablename__ = "restricted_numbers"
    __table_args__ = (UniqueConstraint("account_id", "e164"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    e164: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ErasureRequest(Base):
    """An erasure by person, carried out as a resumable job. The subject (number, e-mail or
    visitor id) is sealed while the work goes on and dropped when it is done; what is left
    (counts, who asked, when) holds no personal data."""

    __tablename__ = "erasure_requests"
    __table_args__ = (CheckConstraint("state IN ('pending', 'done')", name="state"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subject_sealed: Mapped[str | None] = mapped_column(String(1000))
    actor: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(8), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    removed: Mapped[str | None] = mapped_column(String(500))  # JSON counts per data type


class Job(Base):
    """Slow work that must survive restarts: one row per kind of work and thing it is about
    (e.g. the conversions of a call). Claimed by one worker at a time with a lease; retried
    with backoff; parked with its last error when it keeps failing."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_jobs_kind_key"),
        CheckConstraint("state IN ('queued', 'running', 'done', 'parked')", name="state"),
        Index("ix_jobs_due", "state", "run_after"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(8), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
