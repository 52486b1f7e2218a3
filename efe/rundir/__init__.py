"""A run directory on disk: its paths, JSONL logs, atomic writes, typed records and the files workers share."""
