"""What integrators call from their own dialplans: the AGI scripts (agi.py) and the classic
agi-bin entry point that relays them (classic.py)."""
