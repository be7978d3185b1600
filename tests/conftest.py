"""Shared test configuration.

Hypothesis runs under the "ci" profile by default: derandomized (the same examples on
every run and every machine, so a failure in CI is a failure on your laptop), no
deadline (the reference oracles are deliberately slow Python loops, and the machines
that run CI are shared), and no example database. Pick another profile with
``HYPOTHESIS_PROFILE=dev pytest`` ("dev": random examples, for hunting new failures).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
