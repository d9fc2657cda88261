"""Dynamic number insertion: which number each website visitor session is shown, answered from
memory at request speed, while a writer keeps the database a second behind.

The database is the record (visits, their pages, the pool numbers they held); the memory is
rebuilt from it at start, and the site settings are read again every few seconds so that
changes made on the admin pages or the command line take effect without a restart. Calls are
attributed from the database (attribution/attribute.py), beside the call path, never on it.

Everything here is driven from the internet, so each thing a client could pile up is bounded
per network (an IPv4 /24, an IPv6 /48: what one customer of a provider commonly has): the
sessions in memory, the pool numbers held, the pages stored each day. A session takes or keeps
a pool number at most once per heartbeat interval, and a session in memory is a few hundred
bytes: what brought the visit is in its row in the database, not here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import logging
import secrets
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from appliance.attribution.pool import Pool
from appliance.attribution.touch import MAX_PAGE, Touch, classify, stored_page
from appliance.config import TrackingConfig
from appliance.conversions.store import LEAD_JOB
from appliance.db.models import (
    Account,
    DniSite,
    Lead,
    NumberHold,
    TrackingNumber,
    Visit,
    VisitPage,
)
from appliance.jobs import queue as jobs
from appliance.ratelimit import client_key, network_key

log = logging.getLogger(__name__)

MAX_PAGES = 50  # pages kept per visit for its timeline
SEEN_EVERY = 30.0  # seconds: how stale a visit's last-seen time may be in the database
MAX_PENDING = 100_000  # writes kept while the database is unreachable
MAX_LEADS = 5  # leads one session may send
HEARTBEAT = 60  # seconds between a page's heartbeats (the snippet is told so)
# a session takes or keeps a pool number at most this often: a heartbeat, less what timers and
# networks may shift it by; anything sooner is answered from what it holds and changes nothing
BEAT_EVERY = HEARTBEAT - 15.0
MAX_NETWORKS_A_DAY = 100_000  # networks whose stored pages a site counts each day
NEVER = float("-inf")


class Refusal(Exception):
    """A request the tracking endpoints refuse: `status` and a message that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Rule:
    field: str  # source, medium, campaign, referrer or landing
    value: str  # lower case; the rule matches when the field contains it
    number: str  # E.164
    number_id: int

    def matches(self, touch: Touch) -> bool:
        text = {
            "source": touch.source,
            "medium": touch.medium,
            "campaign": touch.campaign,
            "referrer": touch.referrer,
            "landing": touch.landing_page,
        }[self.field]
        return bool(text) and self.value in str(text).lower()


@dataclass(frozen=True)
class SiteConfig:
    id: int
    account_id: int
    key: str
    origins: frozenset[str]
    replace: tuple[str, ...]
    consent_required: bool
    hold: float  # seconds
    forms: tuple[str, ...]
    rules: tuple[Rule, ...]
    pool: tuple[str, ...]  # E.164 numbers, by id
    number_ids: Mapping[str, int]


@dataclass(frozen=True)
class Answer:
    number: str | None  # None: the page keeps its own numbers
    replace: tuple[str, ...]
    forms: tuple[str, ...]
    tracking: bool


@dataclass(slots=True)
class _Session:
    """A visit going on, as small as it can be (a site may have 100,000 in memory): its row
    in the database holds what brought it."""

    id: str
    last_seen: float
    rule: Rule | None
    written: float  # the last-seen time last written to the database
    client: str = ""  # the address (an IPv6 /64) it started from
    network: str = ""  # the network of that address (an IPv4 /24, an IPv6 /48)
    asked: float = NEVER  # when it last took or kept a pool number
    page: int = 0  # the hash of the last page stored: a reload is not stored again
    pages: int = 0
    leads: int = 0
    pooled: bool = False  # it was given a pool number (and counts toward its network's share)
    restored: bool = False  # restored after a restart: where it is from is not known yet


def _drop(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


@dataclass
class _Site:
    config: SiteConfig
    pool: Pool
    sessions: OrderedDict[str, _Session] = field(default_factory=OrderedDict)  # by visitor
    pooled: Counter[str] = field(default_factory=Counter)  # network -> sessions given a number
    networks: Counter[str] = field(default_factory=Counter)  # network -> sessions going on
    pages: Counter[str] = field(default_factory=Counter)  # network -> pages stored on `day`
    day: int = 0

    def session(self, visitor: str, now: float, most: int) -> _Session | None:
        """The visitor's session going on; sessions end `hold` after they were last seen,
        and the oldest first when there are `most`."""
        while self.sessions:
            oldest = next(iter(self.sessions.values()))
            if oldest.last_seen + self.config.hold > now and len(self.sessions) < most:
                break
            self.end(next(iter(self.sessions)))
        return self.sessions.get(visitor)

    def start(self, visitor: str, session: _Session) -> None:
        self.sessions[visitor] = session
        self.networks[session.network] += 1

    def end(self, visitor: str) -> None:
        session = self.sessions.pop(visitor)
        if not session.restored:  # one restored after a restart counts from its first request
            _drop(self.networks, session.network)
        if session.pooled:
            _drop(self.pooled, session.network)

    def share(self, percent: int) -> int:
        """How many sessions of one network may hold pool numbers at once (100%: no limit at
        all, even when the pool runs out)."""
        return sys.maxsize if percent >= 100 else max(2, self.pool.size * percent // 100)

    def page_allowed(self, network: str, now: float, per_day: int) -> bool:
        """Whether one more page of this network may be stored today (UTC), and count it."""
        day = int(now // 86400)
        if day != self.day:
            self.day, self.pages = day, Counter()
        if network not in self.pages and len(self.pages) >= MAX_NETWORKS_A_DAY:
            return False
        if self.pages[network] >= per_day:
            return False
        self.pages[network] += 1
        return True


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


class IpPolicy:
    """How much of a visitor's address is kept (tracking.ip_storage)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.salt = secrets.token_bytes(16)
        self.day = dt.date.today()

    def keep(self, address: str | None) -> str | None:
        if not address or self.mode == "none":
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        if self.mode == "full":
            return str(ip)
        if self.mode == "hash":
            if dt.date.today() != self.day:  # a new salt each day: no linking across days
                self.salt, self.day = secrets.token_bytes(16), dt.date.today()
            return hashlib.blake2b(ip.packed, key=self.salt, digest_size=8).hexdigest()
        prefix = 24 if ip.version == 4 else 48
        return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


class Dni:
    def __init__(
        self, sessions: sessionmaker[Session], config: TrackingConfig = TrackingConfig()
    ) -> None:
        self.db = sessions
        self.ip = IpPolicy(config.ip_storage)
        self.pool_share = config.pool_share  # percent of a pool one network may hold
        self.max_sessions = config.sessions_per_site
        self.network_sessions = config.sessions_per_network
        self.network_pages = config.pages_per_day
        self.sites: dict[str, _Site] = {}
        self.writes: list[tuple[str, Any]] = []
        self.seen: dict[str, float] = {}  # visit id -> last seen, written in the next flush
        self.loaded = False

    # requests ----------------------------------------------------------------------------
    def site(self, key: str, origin: str | None) -> SiteConfig:
        site = self.sites.get(key)
        if site is None:
            raise Refusal(404, "unknown site")
        if origin not in site.config.origins:
            raise Refusal(403, "this page's origin is not one of the site's")
        return site.config

    def visit(
        self,
        config: SiteConfig,
        visitor: str,
        page: str,
        referrer: str | None,
        address: str | None,
        now: float,
        beat: bool = False,
        may_start: Callable[[], bool] = lambda: True,
    ) -> Answer:
        """The number a visitor's page shows: its session's rule number or pool number."""
        site = self.sites[config.key]
        session = site.session(visitor, now, self.max_sessions)
        if session is None:
            session = self._start(site, visitor, page, referrer, address, now, may_start)
            beat = False  # a new session's first answer is a page view
        elif session.restored:  # where it is from, now
            self._place(site, session, address, now)
        session.last_seen = now
        site.sessions.move_to_end(visitor)
        if now - session.written >= SEEN_EVERY:  # a hold lasts minutes: no need for each beat
            session.written = now
            self.seen[session.id] = now
        if not beat:
            self._page(site, session, page, now)
        return Answer(self._number(site, session, now, beat), config.replace, config.forms, True)

    def _start(
        self,
        site: _Site,
        visitor: str,
        page: str,
        referrer: str | None,
        address: str | None,
        now: float,
        may_start: Callable[[], bool],
    ) -> _Session:
        """A new session, refused when its network has too many going on or its address
        started too many lately."""
        network = network_key(address)
        if site.networks[network] >= self.network_sessions:
            raise Refusal(429, "too many visits going on from this network")
        if not may_start():
            raise Refusal(429, "too many new visits from this address")
        touch = classify(page, referrer)
        rule = next((r for r in site.config.rules if r.matches(touch)), None)
        session = _Session(secrets.token_hex(16), now, rule, now, client_key(address), network)
        site.start(visitor, session)
        self.writes.append(
            ("visit", self._visit_row(site.config, visitor, session, touch, address))
        )
        return session

    def _place(self, site: _Site, session: _Session, address: str | None, now: float) -> None:
        """Where a session restored after a restart is from (what it was restored without);
        a pool number it holds counts toward its network's share from now on."""
        session.client, session.network = client_key(address), network_key(address)
        session.restored = False
        site.networks[session.network] += 1
        if site.pool.number_of(session.id, now) is not None:
            session.pooled = True
            site.pooled[session.network] += 1

    def _page(self, site: _Site, session: _Session, page: str, now: float) -> None:
        """Keep a page view for the visit's timeline: short, not a reload of the last one,
        at most MAX_PAGES a visit and `pages_per_day` a network."""
        if session.pages >= MAX_PAGES:
            return
        url = stored_page(page, MAX_PAGE)
        if hash(url) == session.page and session.pages:
            return
        if not site.page_allowed(session.network, now, self.network_pages):
            return
        session.page, session.pages = hash(url), session.pages + 1
        self.writes.append(("page", {"visit_id": session.id, "at": _utc(now), "url": url}))

    def lead(
        self,
        config: SiteConfig,
        visitor: str,
        form: str,
        page: str,
        fields: str,
        address: str | None,
        now: float,
    ) -> None:
        """A form submitted on the site, with the attribution of the visitor's session: only
        from a session going on, from the address it started from, a few per session."""
        session = self.sites[config.key].session(visitor, now, self.max_sessions)
        if session is None or session.client != client_key(address):
            raise Refusal(403, "no visit going on for this visitor")
        if session.leads >= MAX_LEADS:
            raise Refusal(429, "too many leads from this visit")
        session.leads += 1
        lead = {  # with the visit's source, medium and campaign when it is written
            "account_id": config.account_id,
            "site_id": config.id,
            "visit_id": session.id,
            "created_at": _utc(now),
            "form": form,
            "fields": fields,
            "page": stored_page(page),
        }
        self.writes.append(("lead", lead))

    def _number(self, site: _Site, session: _Session, now: float, beat: bool) -> str | None:
        if session.rule is not None:
            return session.rule.number
        if now - session.asked < BEAT_EVERY:  # sooner than a heartbeat: it changes nothing
            return site.pool.number_of(session.id, now)
        session.asked = now
        if beat:  # a heartbeat keeps a number; it never takes one back from another visit
            return site.pool.heartbeat(session.id, session.network, now)
        if not session.pooled:
            if site.pooled[session.network] >= site.share(self.pool_share):
                return None  # this network holds its share of the pool: the site's own number
            session.pooled = True
            site.pooled[session.network] += 1
        allocation = site.pool.request(session.id, session.network, now)
        if allocation is None:
            return None
        number_id = site.config.number_ids[allocation.number]
        if allocation.evicted is not None:
            self.writes.append(("release", (allocation.evicted, number_id, _utc(now))))
        if allocation.new:
            hold = {
                "visit_id": session.id,
                "number_id": number_id,
                "held_from": _utc(now),
                "recycled": allocation.recycled,
            }
            self.writes.append(("hold", hold))
        return allocation.number

    def _visit_row(
        self, config: SiteConfig, visitor: str, session: _Session, touch: Touch, address: str | None
    ) -> dict[str, Any]:
        return {
            "id": session.id,
            "site_id": config.id,
            "account_id": config.account_id,
            "visitor": visitor,
            "started_at": _utc(session.last_seen),
            "last_seen_at": _utc(session.last_seen),
            "landing_page": touch.landing_page,
            "referrer": touch.referrer,
            "source_name": touch.source,
            "medium": touch.medium,
            "campaign_name": touch.campaign,
            "keyword": touch.keyword,
            "click_id_type": touch.click_id_type,
            "click_id": touch.click_id,
            "ip": self.ip.keep(address),
        }

    # what admins see ---------------------------------------------------------------------
    def utilisation(self, now: float) -> dict[int, tuple[int, int, int]]:
        """Per site id: (pool numbers in use, pool size, times the pool ran out since start)."""
        return {
            s.config.id: (s.pool.in_use(now), s.pool.size, s.pool.exhausted)
            for s in self.sites.values()
        }

    # the database ------------------------------------------------------------------------
    async def run(self, reload_every: float = 5.0, flush_every: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        next_reload = loop.time()
        while True:
            if loop.time() >= next_reload:
                configs = await asyncio.to_thread(self.read_sites)
                self.apply(configs, await asyncio.to_thread(self.read_holds, configs))
                next_reload = loop.time() + reload_every
            await self.flush()
            await asyncio.sleep(flush_every)

    async def flush(self) -> None:
        writes, seen = self.writes, self.seen
        if not writes and not seen:
            return
        self.writes, self.seen = [], {}
        try:
            await asyncio.to_thread(self._write, writes, seen)
        except OperationalError:  # the database is away: keep them (a bounded number) for later
            log.warning("visits not written yet: the database is unreachable")
            self.writes[:0] = writes[-MAX_PENDING:]
            self.seen = seen | self.seen
            return
        except Exception:
            log.warning("%d visit write(s) failed together; writing them one by one", len(writes))
            lost = await asyncio.to_thread(self._write_each, writes, seen)
            for site_id, visitor, visit_id in lost:  # here, on the event loop: memory is ours
                self._forget(site_id, visitor, visit_id)

    def _write_each(
        self, writes: list[tuple[str, Any]], seen: dict[str, float]
    ) -> list[tuple[int, str, str]]:
        """One transaction each: a write the database refuses (its site was just removed,
        say) is dropped and logged instead of blocking the others forever."""
        dropped = 0
        lost: list[tuple[int, str, str]] = []  # visits the database refused: sessions to forget
        for write in writes:
            kind, row = write
            if kind in ("page", "hold", "lead") and any(row["visit_id"] == v for _, _, v in lost):
                dropped += 1
                continue
            try:
                self._write([write], {})
            except Exception:
                dropped += 1
                if kind == "visit":
                    lost.append((row["site_id"], row["visitor"], row["id"]))
        try:
            self._write([], seen)
        except Exception:
            dropped += len(seen)
        if dropped:
            log.error("%d visit write(s) dropped: the database refused them", dropped)
        return lost

    def _write(self, writes: list[tuple[str, Any]], seen: dict[str, float]) -> None:
        """One transaction, in bulk: new visits first, then holds, releases and leads in the
        order they happened, then pages and last-seen times."""
        with self.db.begin() as session:
            visits = [row for kind, row in writes if kind == "visit"]
            if visits:
                session.execute(insert(Visit), visits)
            for kind, row in writes:
                if kind == "hold":
                    session.execute(insert(NumberHold), [row])
                elif kind == "release":
                    visit_id, number_id, at = row
                    session.execute(
                        update(NumberHold)
                        .where(
                            NumberHold.visit_id == visit_id,
                            NumberHold.number_id == number_id,
                            NumberHold.released_at.is_(None),
                        )
                        .values(released_at=at)
                    )
                elif kind == "lead":  # with the job that converts it, atomically
                    visit = session.get(Visit, row["visit_id"])
                    lead = Lead(**row)
                    if visit is not None:
                        lead.source_name, lead.medium = visit.source_name, visit.medium
                        lead.campaign_name = visit.campaign_name
                    session.add(lead)
                    session.flush()
                    jobs.enqueue(session, LEAD_JOB, str(lead.id))
            pages = [row for kind, row in writes if kind == "page"]
            if pages:
                session.execute(insert(VisitPage), pages)
            if seen:  # one statement for all; a visit that is not there changes nothing
                visits_table = Visit.__table__
                session.execute(
                    update(visits_table)  # type: ignore[arg-type]
                    .where(visits_table.c.id == bindparam("visit"))
                    .values(last_seen_at=bindparam("at")),
                    [{"visit": visit_id, "at": _utc(at)} for visit_id, at in seen.items()],
                )

    def _forget(self, site_id: int, visitor: str, visit_id: str) -> None:
        for site in self.sites.values():
            if site.config.id == site_id:
                session = site.sessions.get(visitor)
                if session is not None and session.id == visit_id:
                    site.end(visitor)
                site.pool.drop(visit_id)

    def read_sites(self) -> list[SiteConfig]:
        with self.db() as session:
            # an account being deleted tracks nobody: its pages keep their own numbers
            live = select(DniSite).join(Account).where(Account.delete_requested_at.is_(None))
            return [_config(session, site) for site in session.scalars(live)]

    def read_holds(self, configs: list[SiteConfig]) -> dict[int, list[tuple[Any, ...]]]:
        """For sites not in memory yet (at start, or just added): their live sessions, oldest
        first, with the pool number each holds; the newest `sessions_per_site` of them."""
        wanted = [c for c in configs if c.key not in self.sites]
        found: dict[int, list[tuple[Any, ...]]] = {}
        with self.db() as session:
            for config in wanted:
                since = _utc(dt.datetime.now(dt.UTC).timestamp() - config.hold)
                rows = session.execute(
                    select(Visit, TrackingNumber.e164)
                    .outerjoin(
                        NumberHold,
                        (NumberHold.visit_id == Visit.id) & NumberHold.released_at.is_(None),
                    )
                    .outerjoin(TrackingNumber, TrackingNumber.id == NumberHold.number_id)
                    .where(Visit.site_id == config.id, Visit.last_seen_at > since)
                    .order_by(Visit.last_seen_at.desc(), NumberHold.held_from.desc())
                    .limit(self.max_sessions)
                )
                found[config.id] = [(visit, e164) for visit, e164 in rows][::-1]
        return found

    def apply(self, configs: list[SiteConfig], holds: dict[int, list[tuple[Any, ...]]]) -> None:
        """Take new site settings: a site whose pool changed gets a new pool that keeps the
        holds on the numbers still in it."""
        fresh: dict[str, _Site] = {}
        for config in configs:
            old = self.sites.get(config.key)
            if old is None:
                fresh[config.key] = _restored(config, holds.get(config.id, []))
            elif old.config.pool != config.pool or old.config.hold != config.hold:
                fresh[config.key] = _repooled(old, config)
            else:
                old.config = config
                fresh[config.key] = old
        self.sites = fresh
        self.loaded = True


def _config(session: Session, site: DniSite) -> SiteConfig:
    pool = session.scalars(
        select(TrackingNumber)
        .where(TrackingNumber.pool_site_id == site.id, TrackingNumber.released_at.is_(None))
        .order_by(TrackingNumber.id)
    ).all()
    rules = tuple(
        Rule(r.field, r.value.lower(), r.number.e164, r.number.id)
        for r in site.rules
        if r.number.released_at is None
    )
    return SiteConfig(
        id=site.id,
        account_id=site.account_id,
        key=site.key,
        origins=frozenset(site.origins.split()),
        replace=tuple(site.replace_numbers.split()),
        consent_required=site.consent_required,
        hold=site.hold_minutes * 60.0,
        forms=tuple(site.forms.split()),
        rules=rules,
        pool=tuple(n.e164 for n in pool),
        number_ids={n.e164: n.id for n in pool},
    )


def _restored(config: SiteConfig, rows: list[tuple[Any, ...]]) -> _Site:
    """A site's sessions and holds as the database has them; where each session is from is
    learnt at its next request."""
    site = _Site(config, Pool(config.pool, config.hold))
    for visit, e164 in rows:
        touch = Touch(
            visit.landing_page,
            visit.referrer,
            visit.source_name,
            visit.medium,
            visit.campaign_name,
            visit.keyword,
            visit.click_id_type,
            visit.click_id,
        )
        last_seen = visit.last_seen_at.timestamp()
        rule = next((r for r in config.rules if r.matches(touch)), None)
        site.sessions[visit.visitor] = _Session(visit.id, last_seen, rule, last_seen, restored=True)
        if e164 is not None:  # a network of its own until its next request says which
            site.pool.resume(visit.id, e164, last_seen, f"restored {visit.id}")
    return site


def _repooled(old: _Site, config: SiteConfig) -> _Site:
    site = replace(old, config=config, pool=Pool(config.pool, config.hold))
    site.pool.exhausted = old.pool.exhausted
    for session_id, held in old.pool.holds.items():  # oldest first
        site.pool.resume(session_id, held.number, held.last_seen, held.network)
    return site
