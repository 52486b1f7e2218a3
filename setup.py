"""Package list for setuptools; everything else is in pyproject.toml.

The code lives in efe/ and evaluators/; the Hydra configuration (conf/) and the seed programs
(programs/) stay at the top of the checkout, as DESIGN.md lays it out, and ship inside the
package as ``efe.conf`` and ``efe.seed_programs`` (mapped in pyproject.toml) so that an
installed wheel finds them with importlib.resources.
"""

from setuptools import find_namespace_packages, setup

setup(packages=find_namespace_packages(include=["efe", "efe.*", "evaluators", "evaluators.*"],
                                       exclude=["*.__pycache__"]) + ["efe.conf", "efe.seed_programs"])
