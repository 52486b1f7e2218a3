"""Frozen programs: freeze a winner, verify a frozen directory, reload it (sandboxed) as a transformer, export it."""
