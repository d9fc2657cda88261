"""Fuzzing at every input boundary: property-based tests that feed each parser, endpoint and
command what an attacker or a broken peer could send, and check its contract (a value or the
boundary's own error, never another exception, never a hang, never another tenant's data).

In the suite they run a modest number of examples each; `python -m tests.fuzz` (scripts/fuzz)
runs them long and prints what was tried and found at each boundary."""
