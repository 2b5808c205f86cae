"""docs/protocol/binary.md and the codec agree: every message's table, generated here from
`LAYOUTS`, appears verbatim in the spec (print the tables by running this file)."""

from __future__ import annotations

import inspect
from enum import IntEnum
from pathlib import Path

import pytest

from crossbook.protocol.binary import CODECS
from crossbook.protocol.binary_messages import LAYOUTS, Kind, Message

SPEC = Path(__file__).resolve().parents[3] / "docs" / "protocol" / "binary.md"
_FIXED = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "bool": 1, "reject": 2}


def describe(kind: Kind) -> tuple[int, str]:
    if isinstance(kind, type) and issubclass(kind, IntEnum):
        return 1, f"u8 `{kind.__name__}`"
    assert isinstance(kind, str)
    if kind in _FIXED:
        return _FIXED[kind], "u16 `Reject`" if kind == "reject" else kind
    digits = kind.lstrip("abcdefghijklmnopqrstuvwxyz")
    return int(digits), kind


def table(cls: type[Message]) -> str:
    type_code, fields = LAYOUTS[cls]
    doc = inspect.getdoc(cls) or ""
    lines = [f"### {cls.__name__} (0x{type_code:02x}, {CODECS[cls].size} bytes)", ""]
    if doc and not doc.startswith(cls.__name__ + "("):
        lines += [" ".join(doc.split()), ""]
    lines += [
        "| offset | field | type |",
        "|---:|---|---|",
        "| 0 | header | `length`, `type`, `version` |",
    ]
    offset = 4
    for name, kind in fields:
        size, text = describe(kind)
        lines.append(f"| {offset} | `{name}` | {text} |")
        offset += size
    assert offset == CODECS[cls].size
    return "\n".join(lines)


@pytest.mark.parametrize("cls", list(LAYOUTS), ids=lambda cls: cls.__name__)
def test_spec_has_the_layout(cls: type[Message]) -> None:
    assert table(cls) in SPEC.read_text()


def test_spec_lists_no_other_message() -> None:
    headings = [line for line in SPEC.read_text().splitlines() if line.startswith("### ")]
    assert len(headings) == len(LAYOUTS)


if __name__ == "__main__":
    print("\n\n".join(table(cls) for cls in LAYOUTS))
