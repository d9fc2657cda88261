"""Memory the controller keeps per website visitor session (dynamic number insertion), measured
with tracemalloc over 10,000 sessions, beside the layout it had before in the same run: each
session a plain object holding its whole Touch (landing page, referrer, campaign, click id).
Now a session holds what answering a request needs and nothing its visit row already has.

Two kinds of visit: a usual one (a landing page with UTM parameters and a click id, a search
engine as referrer) and the largest the endpoints accept (addresses of 2,000 characters).
Every session comes from an address of its own, four addresses to a /24; the caches of
addresses, shared by every site and bounded, are warmed before measuring.

    python -m bench.dni_sessions
"""

from __future__ import annotations

import gc
import secrets
import time
import tracemalloc
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from appliance.attribution.dni import Dni, Rule, SiteConfig, _Site
from appliance.attribution.pool import Pool
from appliance.attribution.touch import Touch, classify
from appliance.config import TrackingConfig
from appliance.ratelimit import client_key, network_key

SESSIONS = 10_000
ORIGIN = "https://www.example.com"
POOL = tuple(f"+1202555{i:04d}" for i in range(20))
VISITS = {
    "usual visit": (
        f"{ORIGIN}/roof-repair?utm_source=google&utm_medium=cpc&utm_campaign=spring"
        "&utm_term=roof+repair&gclid=Cj0KCQiA4NWrBhD-ARIsAFCKwWsOmE2V3n8",
        "https://www.google.com/",
    ),
    "largest visit": (
        f"{ORIGIN}/{'p' * 1500}?utm_source=google&utm_campaign={'c' * 120}&gclid={'x' * 250}",
        f"https://ref.example.net/{'r' * 1970}",
    ),
}


@dataclass
class OldSession:
    """A session as it was kept before: a dataclass with a dict, and the visit's Touch."""

    id: str
    last_seen: float
    touch: Touch
    rule: Rule | None
    pages: int = 0
    written: float = 0.0
    client: str = ""
    pooled: bool = False
    leads: int = 0


def config() -> SiteConfig:
    return SiteConfig(
        id=1,
        account_id=1,
        key="benchsitekey",
        origins=frozenset({ORIGIN}),
        replace=("+12025550100",),
        consent_required=False,
        hold=1800.0,
        forms=(),
        rules=(),
        pool=POOL,
        number_ids={n: i for i, n in enumerate(POOL)},
    )


def address(i: int) -> str:
    return f"10.{i // 1024 % 256}.{i // 4 % 256}.{i % 4 + 1}"


def old_style(page: str, referrer: str) -> object:
    """The sessions of one site as they were kept, built the way they were built."""
    sessions: OrderedDict[str, OldSession] = OrderedDict()
    pooled: Counter[str] = Counter()
    now = time.time()
    for i in range(SESSIONS):
        client = client_key(address(i))
        touch = classify(f"{page}&n={i}", referrer)
        session = OldSession(secrets.token_hex(16), now, touch, None, written=now, client=client)
        session.pages, session.pooled = 1, True
        sessions[f"{i:032x}"] = session
        pooled[client] += 1
    return sessions, pooled


def new_style(page: str, referrer: str) -> object:
    """The sessions of one site as the tracking endpoints keep them now."""
    dni = Dni(None, TrackingConfig(pool_share=100))
    site = config()
    dni.sites[site.key] = _Site(site, Pool(site.pool, site.hold))
    now = time.time()
    for i in range(SESSIONS):
        dni.visit(site, f"{i:032x}", f"{page}&n={i}", referrer, address(i), now)
        dni.writes.clear()  # written to the database and gone at the next flush
        dni.seen.clear()
    return dni


def per_session(build: Callable[[str, str], object], page: str, referrer: str) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build(page, referrer)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / SESSIONS


def main() -> None:
    for i in range(SESSIONS):  # the bounded caches of addresses, shared by all sites
        client_key(address(i))
        network_key(address(i))
    print(f"controller memory per visitor session, {SESSIONS:,} sessions (bytes)")
    print(f"{'visit':<16}{'before':>10}{'now':>10}{'now / before':>15}")
    for name, (page, referrer) in VISITS.items():
        old = per_session(old_style, page, referrer)
        new = per_session(new_style, page, referrer)
        print(f"{name:<16}{old:>10,.0f}{new:>10,.0f}{new / old:>15.2f}")
    limits = TrackingConfig()
    print(
        f"at most {limits.sessions_per_site:,} sessions a site and "
        f"{limits.sessions_per_network:,} a network (tracking.sessions_per_site, "
        "tracking.sessions_per_network)"
    )


if __name__ == "__main__":
    main()
