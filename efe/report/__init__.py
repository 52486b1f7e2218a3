"""What a finished run shows: plots, experiment tracking and training traces, all read from its directory."""
