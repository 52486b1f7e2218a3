"""Benchmark machinery (used by scripts/bench_tab.py and scripts/bench_time.py): baseline methods
run on efe's own sandbox, gates, LLM back ends, cache and ledger, so every method shares one
budget and one set of safety rules."""
