"""One node per test module (starting one costs about a second), plus a helper per test
for a fresh funded trader key so that tests do not share rate-limit budgets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crossbook.config import DEFAULT_TOML
from tests.support.node import NodeProcess

LIMITS = """
[limits]
key_weight_per_minute = 100000
key_orders_per_10s = 40
key_orders_per_day = 100000
ip_weight_per_minute = 1000000
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    base: Path = tmp_path_factory.mktemp("node")
    process = NodeProcess(base / "data", DEFAULT_TOML + LIMITS)
    process.start()
    try:
        yield process
    finally:
        process.close()
