"""The number-request endpoint of the tracking listener beside a bare aiohttp endpoint that
answers a constant, in the same run: requests per second and latency under the same load.

Each server runs in a process of its own on loopback (plain HTTP for both: TLS would cost
both the same); one client process drives it with CONCURRENCY connections. The tracking
server is the real one: a site on a SQLite database with a pool of 12,000 numbers, 10,000
visitor sessions already holding one, and its writer flushing visits to the database.

    python -m bench.tracking
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, TCPConnector, web

from bench.harness import percentile

CONCURRENCY = 32
DURATION = 8.0  # seconds per run
VISITORS = 10_000
ORIGIN = "https://www.example.com"


def _serve_bare(port: int, ready) -> None:
    async def constant(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"number": "+12025550100"})

    app = web.Application()
    app.router.add_post("/t/v1/number", constant)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _serve_tracking(port: int, data: str, ready) -> None:
    from appliance.admin import NumberRequest, add_number, default_account
    from appliance.attribution import sites
    from appliance.attribution.dni import Dni
    from appliance.config import TrackingConfig
    from appliance.db.engine import make_engine, session_factory
    from appliance.db.migrate import upgrade
    from appliance.web.tracking import tracking_app

    engine = make_engine(f"sqlite:///{data}/bench.db")
    upgrade(engine)
    db = session_factory(engine)
    with db.begin() as session:
        account = default_account(session).id
        numbers = [f"+1202{n:07d}" for n in range(5550000, 5550000 + 12_000)]
        for number in numbers:
            add_number(session, NumberRequest(number), account)
        site = sites.add_site(
            session, sites.SiteRequest("Shop", (ORIGIN,), ("+12025550100",)), account, "bench"
        )
        sites.set_pool(session, site, numbers, "bench")
        key = site.key
    (Path(data) / "key").write_text(key)
    everyone = TrackingConfig(pool_share=100, sessions_per_network=10**9, pages_per_day=10**9)
    dni = Dni(db, everyone)  # every request comes from loopback here
    configs = dni.read_sites()
    dni.apply(configs, dni.read_holds(configs))
    now = time.time()
    config = dni.sites[key].config
    for i in range(VISITORS):  # the sessions already on the site
        dni.visit(config, f"{i:032x}", f"{ORIGIN}/", None, "127.0.0.1", now)
    limits = TrackingConfig(requests_per_minute=10**9, new_visits_per_hour=10**9)
    app = tracking_app(dni, limits)

    async def writer(app: web.Application):
        task = asyncio.ensure_future(dni.run())
        yield
        task.cancel()

    app.cleanup_ctx.append(writer)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _load(port: int, key: str, seconds: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    headers = {"Origin": ORIGIN, "Content-Type": "text/plain"}
    url = f"http://127.0.0.1:{port}/t/v1/number"

    async def worker(session: ClientSession, seed: int) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < stop:
            visitor = rng.randrange(VISITORS)  # returning visitors: page views and heartbeats
            body = {
                "site": key,
                "visitor": f"{visitor:032x}",
                "url": f"{ORIGIN}/page{rng.randrange(20)}",
                "beat": rng.random() < 0.5,
            }
            start = time.perf_counter()
            async with session.post(url, data=json.dumps(body), headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append((time.perf_counter() - start) * 1000)

    async with ClientSession(connector=TCPConnector(limit=CONCURRENCY)) as session:
        await asyncio.gather(*(worker(session, i) for i in range(CONCURRENCY)))
    return len(latencies), latencies


def _wait_listening(port: int) -> None:
    import socket

    for _ in range(400):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def measure(target, args: tuple, port: int, keys: Path | None = None) -> tuple[float, list[float]]:
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=target, args=(*args, ready), daemon=True)
    server.start()
    try:
        ready.wait(300)
        _wait_listening(port)
        key = keys.read_text() if keys else "k" * 22
        asyncio.run(_load(port, key, 1.0))  # warm up
        count, latencies = asyncio.run(_load(port, key, DURATION))
        return count / DURATION, latencies
    finally:
        server.terminate()
        server.join()


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        rows = []
        for _ in range(2):  # alternate, so neither gets the quieter moments only
            rows.append(("bare aiohttp", *measure(_serve_bare, (21801,), 21801)))
            rows.append(
                (
                    "number request",
                    *measure(_serve_tracking, (21802, data), 21802, Path(data) / "key"),
                )
            )
            (Path(data) / "bench.db").unlink()
    print(
        f"tracking number requests: {CONCURRENCY} connections, {DURATION:.0f} s a run, "
        f"{VISITORS} visitors holding pool numbers (req/s, ms)"
    )
    print(f"{'server':<18}{'req/s':>10}{'p50':>8}{'p99':>8}")
    for name, rate, latencies in rows:
        print(
            f"{name:<18}{rate:>10.0f}{percentile(latencies, 50):>8.2f}"
            f"{percentile(latencies, 99):>8.2f}"
        )
    bare = [r for n, r, _ in rows if n == "bare aiohttp"]
    real = [r for n, r, _ in rows if n == "number request"]
    print(f"number request throughput / bare: {sum(real) / sum(bare):.0%}")


if __name__ == "__main__":
    main()
