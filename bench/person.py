"""Finding and erasing one person among many calls (appliance/privacy/person.py, erasure.py),
on SQLite, beside the call log's own search for the same number (a LIKE over the calls, as an
admin would look a caller up by hand), in the same run.

The person has five calls among the synthetic ones of bench/call_log.py; figures are
p50/p95 in milliseconds over repeated finds, then one erasure (rows, search index, WAL).

    python -m bench.person [--calls 1000000] [--repeat 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from appliance.access import the_box
from appliance.calls import log as call_log
from appliance.db.engine import make_engine, session_factory
from appliance.db.models import Call
from appliance.privacy import erasure, person, subject
from appliance.recordings import keys
from appliance.recordings.vault import RecordingVault
from appliance.secrets import SecretBox
from bench.call_log import NOW, populate, timed
from bench.harness import percentile

PERSON = "+13125550199"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        start = time.perf_counter()
        populate(engine, args.calls)
        with engine.begin() as connection:  # the person: five calls, written three ways
            connection.execute(insert(Call), [
                {"id": secrets.token_hex(16), "account_id": 2, "dialled": "+12025550123",
                 "caller_number": spelling, "started_at": NOW - dt.timedelta(days=d),
                 "disposition": "answered", "linkedid": f"9{d}.1", "via": "live"}
                for d, spelling in enumerate(
                    (PERSON, PERSON, "13125550199", "(312) 555-0199", PERSON), start=1)
            ])  # fmt: skip
        print(f"SQLite: {args.calls} calls written in {time.perf_counter() - start:.0f} s")
        sessions = session_factory(engine)
        wanted = subject.parse(PERSON)
        with sessions() as session:
            box = the_box(session, "bench")
            assert len(person.find(session, box, wanted).calls) == 5

        def find() -> None:
            with sessions() as session:
                person.find(session, box, wanted)

        def log_search() -> None:
            with sessions() as session:
                call_log.page(session, box, call_log.CallFilter(search="5550199"), None, 50)

        figures = {
            "call log search (baseline)": timed(log_search, args.repeat),
            "person find": timed(find, args.repeat),
        }
        keys.create(Path(folder) / "keys")
        vault = RecordingVault(sessions, Path(folder) / "store", Path(folder) / "keys")
        secret_box = SecretBox.from_file(Path(folder) / "box.key")
        start = time.perf_counter()
        request = erasure.start(sessions, secret_box, box, wanted, "bench")
        report = erasure.run(sessions, vault, secret_box, request)
        erased_ms = (time.perf_counter() - start) * 1000
    print(f"\none person among {args.calls} calls (ms)")
    print(f"{'case':<30}{'p50':>10}{'p95':>10}")
    for case, samples in figures.items():
        print(f"{case:<30}{percentile(samples, 50):>10.1f}{percentile(samples, 95):>10.1f}")
    base = percentile(figures["call log search (baseline)"], 50)
    print(f"find / call log search (p50): {percentile(figures['person find'], 50) / base:.2f}")
    print(f"erasure of the person, once: {erased_ms:.0f} ms ({report})")


if __name__ == "__main__":
    main()
