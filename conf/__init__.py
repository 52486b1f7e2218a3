"""Hydra configuration of efe, shipped with the package (``efe.conf``)."""
