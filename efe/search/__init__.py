"""The search loop on openevolve, shared by the tabular and time-series settings."""
