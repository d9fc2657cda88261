"""Persistent jobs: slow work that survives restarts (see queue.py), and the runner that does
it (runner.py)."""
