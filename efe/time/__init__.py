"""EFE-Time: evolving invertible normalizations for forecasters."""
