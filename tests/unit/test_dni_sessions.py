"""What a visitor session costs the controller's memory: a site may keep 100,000 of them, so a
session holds what answering a request needs, not what its visit row in the database has
(landing page and referrer of up to 2,000 characters each, campaign, click id).
bench/dni_sessions.py prints the figures beside the layout of before."""

import gc
import time
import tracemalloc

from appliance.attribution.dni import Dni, SiteConfig, _Site
from appliance.attribution.pool import Pool
from appliance.config import TrackingConfig
from appliance.ratelimit import client_key, network_key

ORIGIN = "https://www.example.com"
SESSIONS = 2000
PAGE = f"{ORIGIN}/{'p' * 1500}?utm_source=google&utm_campaign={'c' * 120}&gclid={'x' * 250}"
REFERRER = f"https://ref.example.net/{'r' * 1970}"


def test_a_session_of_the_largest_visit_keeps_well_under_a_kilobyte():
    pool = ("+12025550130", "+12025550131")
    site = SiteConfig(1, 1, "sitekey123", frozenset({ORIGIN}), (), False, 1800.0, (), (), pool,
                      {n: i for i, n in enumerate(pool)})  # fmt: skip
    dni = Dni(None, TrackingConfig(pool_share=100))
    dni.sites[site.key] = _Site(site, Pool(site.pool, site.hold))
    addresses = [f"10.0.{i // 4 % 256}.{i % 4 + 1}" for i in range(SESSIONS)]
    visitors = [f"{i:032x}" for i in range(SESSIONS)]
    for address in addresses:  # process-wide caches, bounded, shared by every site
        client_key(address), network_key(address)
    now = time.time()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for visitor, address in zip(visitors, addresses, strict=True):
        dni.visit(site, visitor, f"{PAGE}&n={visitor}", REFERRER, address, now)
        dni.writes.clear()  # gone to the database at the next flush
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(dni.sites[site.key].sessions) == SESSIONS
    assert kept / SESSIONS < 1000  # it was over 5,000 bytes while the session kept its Touch
