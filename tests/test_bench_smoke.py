"""``make bench`` works: at tiny sizes the benchmark prints its whole table and exits 0.

No timing is checked here; the figures of a ``--quick`` run mean nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"

ROWS = (
    "floor: bare aiohttp",
    "async generator",
    "sync iterator",
    "ask()",
    'transport="requests"',
    "first token, floor: pooled aiohttp, warm",
    "first token, floor: pooled requests, warm",
    "first token, async generator, warm",
    "first token, blocking iterator on aiohttp, warm",
    "first token, blocking iterator on requests, warm",
    "whole answer, Client.ask, warm",
    "whole answer, AsyncClient.ask, warm",
    "calls/s, async generator",
    "calls/s, blocking iterator on requests",
    "thread hand-off and back, bare",
    "streams × 20 events, wall",
    "streams × 20 events, peak RSS",
    "SDK direct: 20 streams",
    "bridge: 20 streams × 20 events, wall",
    "bridge: 20 streams × 20 events, peak RSS",
    "import aiohttp, tenacity",
    "import opchatgpts",
)


def test_bench_quick_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("row "))
    assert lines[header].split() == ["row", "median", "ratio", "vs", "target", "result"]
    rule = lines[header - 1]
    assert set(rule) == {"=", " "} and lines[header + 1] == rule
    end = lines.index(rule, header + 2)
    body = lines[header + 2 : end]
    for label in ROWS:
        assert any(label in line for line in body), f"no row {label!r} in:\n{done.stdout}"
    for line in body:
        assert "error" not in line, line
        if "≤" in line or "all finish" in line:  # a row with a target shows its verdict
            assert line.split()[-1] in ("pass", "FAIL", "n/a"), line
