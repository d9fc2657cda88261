"""Allocation cost of the DNI number pool with 10,000 visitors holding numbers (each from a
network of its own, the pool's costliest case for finding whom to take a number from when it
is full), beside a plain dict lookup in the same run (the least any allocation could cost).

    python -m bench.pool
"""

from __future__ import annotations

import time

from appliance.attribution.pool import Pool
from bench.harness import percentile

ACTIVE = 10_000


def per_call(run, count: int) -> list[float]:
    samples = []
    for i in range(count):
        start = time.perf_counter()
        run(i)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def main() -> None:
    pool = Pool([f"+1202555{i:04d}" for i in range(ACTIVE + 2_000)], hold=1800)
    for i in range(ACTIVE):
        pool.request(f"visitor-{i}", f"net-{i}", 0.0)
    table = {f"visitor-{i}": i for i in range(ACTIVE)}
    now = 1.0

    def returning(session: str) -> None:
        pool.request(session, "net-" + session.removeprefix("visitor-"), now)

    def beat(session: str) -> None:
        pool.heartbeat(session, "net-" + session.removeprefix("visitor-"), now)

    rows = {
        "dict lookup (baseline)": per_call(lambda i: table.get(f"visitor-{i % ACTIVE}"), 20_000),
        "returning visitor": per_call(lambda i: returning(f"visitor-{i % ACTIVE}"), 20_000),
        "heartbeat": per_call(lambda i: beat(f"visitor-{i % ACTIVE}"), 20_000),
        "new visitor": per_call(lambda i: pool.request(f"new-{i}", f"new-{i}", now), 2_000),
        "new visitor, pool full": per_call(
            lambda i: pool.request(f"late-{i}", f"late-{i % 500}", now), 2_000
        ),
    }
    print(f"number pool with {ACTIVE} visitors holding numbers (microseconds per call)")
    print(f"{'case':<26}{'p50':>8}{'p99':>8}{'p99 / baseline':>16}")
    base = percentile(rows["dict lookup (baseline)"], 99)
    for name, samples in rows.items():
        p99 = percentile(samples, 99)
        print(f"{name:<26}{percentile(samples, 50):>8.2f}{p99:>8.2f}{p99 / base:>16.1f}")
    print(f"pool exhausted {pool.exhausted} times while the last 2,000 new visitors came")


if __name__ == "__main__":
    main()
