"""EFE-Time trusted evaluation code: forecasters, metrics, gates, windows, fitness."""
