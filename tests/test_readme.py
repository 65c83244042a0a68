"""Every Python example in README.rst runs as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import List

import pytest

README = Path(__file__).resolve().parent.parent / "README.rst"


def python_examples() -> List[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return [textwrap.dedent(block) for block in blocks]


def test_readme_has_examples():
    assert len(python_examples()) >= 4


@pytest.mark.parametrize("index", range(len(python_examples())))
def test_readme_example_runs(index, capsys):
    code = python_examples()[index]
    exec(compile(code, f"README.rst example {index}", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert out.strip() or "assert " in code  # each example shows or checks its result


def test_readme_is_valid_restructuredtext():
    # setup.cfg makes README.rst the package description: it must render without errors.
    docutils_core = pytest.importorskip("docutils.core")
    document = docutils_core.publish_doctree(
        README.read_text(encoding="utf-8"), settings_overrides={"report_level": 5}
    )
    problems = [
        node.astext()
        for node in document.findall()
        if node.tagname == "system_message" and int(node.get("level", 0)) >= 2
    ]
    assert problems == []
