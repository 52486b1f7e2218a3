"""The pytest suite ``python -m efe.package`` writes into every package (copied, never imported here)."""
