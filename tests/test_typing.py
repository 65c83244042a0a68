"""The public API is typed: mypy --strict accepts right calls and rejects misspelt keywords."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

HERE = Path(__file__).parent / "typing"


@pytest.fixture(scope="module")
def errors(tmp_path_factory: pytest.TempPathFactory) -> Dict[Tuple[str, int], List[str]]:
    """mypy --strict's errors on the two sample files, by (file name, line)."""
    pytest.importorskip("mypy")
    cache = tmp_path_factory.mktemp("mypy-cache")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
         str(HERE / "good_calls.py"), str(HERE / "bad_calls.py")],
        capture_output=True, text=True, timeout=300,
    )
    found: Dict[Tuple[str, int], List[str]] = {}
    for line in done.stdout.splitlines():
        match = re.match(r"(.*?):(\d+): error:", line)
        if match:
            found.setdefault((Path(match.group(1)).name, int(match.group(2))), []).append(line)
    return found


def test_right_calls_are_accepted(errors: Dict[Tuple[str, int], List[str]]) -> None:
    assert [lines for (name, _), lines in errors.items() if name == "good_calls.py"] == []


def test_every_misspelt_or_mistyped_keyword_is_an_error(errors: Dict[Tuple[str, int], List[str]]) -> None:
    source = (HERE / "bad_calls.py").read_text().splitlines()
    marked = {number for number, line in enumerate(source, 1) if "# error:" in line}
    flagged = {number for (name, number) in errors if name == "bad_calls.py"}
    assert len(marked) >= 10
    assert flagged == marked, "\n".join(line for lines in errors.values() for line in lines)
