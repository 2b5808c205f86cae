"""Shared test configuration: the engine build under test, and Hypothesis profiles.

The suite tests the plain-Python engine, the reference, even when a mypyc build sits beside
the sources: `CROSSBOOK_ENGINE=python` unless the caller asked for `compiled` (set before
`crossbook` is first imported; nodes started by the tests inherit it).

`default` keeps the property suite short enough for every run; set
`CROSSBOOK_HYPOTHESIS_PROFILE=long` for a deeper search (more examples, longer streams).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

os.environ.setdefault("CROSSBOOK_ENGINE", "python")

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
