"""``python -m efe.apply``: a frozen program applied to files with pandas, Dask or Spark, partition by partition."""

from efe.apply.command import main
from efe.apply.engines import apply

__all__ = ["apply", "main"]
