"""A caller's real recorded call erased while the controller runs: the call, its sealed file
and every copy of its wrapped key and number in the database's files are gone."""

from __future__ import annotations

from tests.harness import Stack
from tests.integration.test_recordings import consent_stack, query, record_one_call


def database_files(stack: Stack) -> dict[str, bytes]:
    files = [stack.database, *stack.database.parent.glob(stack.database.name + "-*")]
    return {path.name: path.read_bytes() for path in files if path.is_file()}


def test_a_recorded_callers_erasure_leaves_nothing_in_the_database_files(stack: Stack, phone):
    consent_stack(stack, consent=False)
    row = record_one_call(stack, phone, talk_ms=2000)
    sealed = stack.data_dir / "recordings" / row["file_name"]
    key = row["wrapped_key"].encode()
    assert any(b"3125550111" in raw for raw in database_files(stack).values())

    shown = stack.appliance("person", "find", "(312) 555-0111")
    assert "calls        1" in shown.stdout and "recordings   1" in shown.stdout
    # just ended: the CDR reconciler may still write it back, so the erasure waits
    refused = stack.appliance("person", "erase", "+1 312 555 0111", "--yes", check=False)
    assert refused.returncode == 2 and "ended less than 2 minutes ago" in refused.stderr
    assert query(stack, "SELECT id FROM erasure_requests") == []
    query(stack, "UPDATE calls SET ended_at = datetime(ended_at, '-3 minutes')")
    erased = stack.appliance("person", "erase", "+1 312 555 0111", "--yes")
    assert "erased 1 calls" in erased.stdout and "1 recordings" in erased.stdout

    assert query(stack, "SELECT id FROM calls") == []
    assert not sealed.exists()
    for name, raw in database_files(stack).items():
        assert b"3125550111" not in raw, name
        assert key not in raw and bytes.fromhex(row["wrapped_key"]) not in raw, name
    (entry,) = query(stack, "SELECT * FROM audit_log WHERE action = 'person.erase'")
    assert "3125550111" not in entry["detail"] and entry["actor"].startswith("cli:")
    again = stack.appliance("person", "erase", "+13125550111", "--yes", check=False)
    assert again.returncode == 2 and "nothing is stored about that number" in again.stderr
