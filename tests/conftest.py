"""Shared test configuration: Hypothesis profiles.

`default` keeps the property suite short enough for every run; set
`CROSSBOOK_HYPOTHESIS_PROFILE=long` for a deeper search (more examples, longer streams).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("CROSSBOOK_HYPOTHESIS_PROFILE", "default"))
