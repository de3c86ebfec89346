"""Config-space dumps in the text format of ``lspci -xxxx`` (readable by ``lspci -F FILE``)."""

from __future__ import annotations

import re

CONFIG_SPACE_SIZE = 4096


def format_lspci(data: bytes, bdf: str = "01:00.0", title: str = "Device") -> str:
    """``BB:DD.F title`` followed by 16 bytes per line, offsets as lspci prints them."""
    if len(data) not in (64, 256, CONFIG_SPACE_SIZE):
        raise ValueError(f"a config dump is 64, 256 or 4096 bytes, not {len(data)}")
    if not re.fullmatch(r"[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", bdf):
        raise ValueError(f"bad bus:device.function {bdf!r}")
    lines = [f"{bdf} {title}"]
    for off in range(0, len(data), 16):
        lines.append(f"{off:02x}: " + " ".join(f"{b:02x}" for b in data[off : off + 16]))
    return "\n".join(lines) + "\n\n"


def parse_lspci(text: str) -> dict[str, bytes]:
    """Inverse of :func:`format_lspci` (several devices allowed): ``{bdf: bytes}``."""
    out: dict[str, bytearray] = {}
    cur: bytearray | None = None
    for line in text.splitlines():
        if m := re.match(r"^([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\s", line):
            cur = out.setdefault(m.group(1), bytearray())
        elif (m := re.match(r"^([0-9a-f]{2,3}): ((?:[0-9a-f]{2} ?)+)$", line)) and cur is not None:
            if int(m.group(1), 16) != len(cur):
                raise ValueError(f"offset {m.group(1)} out of sequence")
            cur += bytes.fromhex(m.group(2))
    return {k: bytes(v) for k, v in out.items()}
