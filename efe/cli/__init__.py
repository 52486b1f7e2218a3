"""What every command line shares: key=value arguments, Hydra apps, errors in one line, opening a run."""
