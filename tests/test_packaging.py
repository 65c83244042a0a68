"""What a user gets from the sdist and the wheel: built here, offline, then looked into.

``python -m build --no-isolation`` builds the sdist, then the wheel from that sdist (as a
user's ``pip install`` of the sdist would), with the setuptools of the test environment, so
nothing is fetched. It builds from a copy of the project without its build leftovers: a stale
``*.egg-info/SOURCES.txt`` would otherwise add to the sdist files that are gone.
"""

from __future__ import annotations

import configparser
import email.message
import email.parser
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from opchatgpts._version import __version__

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent
LEFTOVERS = (".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.py[cod]", ".hypothesis",
             ".pytest_cache", ".mypy_cache", ".ruff_cache")


class Built:
    """The sdist's and the wheel's file lists and metadata."""

    def __init__(self, sdist: Path, wheel: Path) -> None:
        self.sdist = sdist
        self.wheel = wheel
        prefix = f"opchatgpts-{__version__}/"
        with tarfile.open(sdist) as tar:
            names = tar.getnames()
            assert all(n == prefix.rstrip("/") or n.startswith(prefix) for n in names), names
            self.sdist_files = {n[len(prefix):] for n in names if tar.getmember(n).isfile()}
            pkg_info = tar.extractfile(prefix + "PKG-INFO")
            assert pkg_info is not None
            self.sdist_metadata = _metadata(pkg_info.read())
        with zipfile.ZipFile(wheel) as zf:
            self.wheel_files = set(zf.namelist())
            self.dist_info = f"opchatgpts-{__version__}.dist-info/"
            self.wheel_metadata = _metadata(zf.read(self.dist_info + "METADATA"))
            self.entry_points = zf.read(self.dist_info + "entry_points.txt").decode("utf-8")
            self.wheel_info = _metadata(zf.read(self.dist_info + "WHEEL"))
            self.wheel_license = [zf.read(n) for n in self.wheel_files if n.startswith(self.dist_info)
                                  and n.rsplit("/", 1)[-1] == "LICENSE"]


def _metadata(raw: bytes) -> email.message.Message:
    return email.parser.Parser().parsestr(raw.decode("utf-8"))  # core metadata is UTF-8


def _package_files() -> List[str]:
    """Every file of the package in the source tree, as a path relative to the project."""
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "opchatgpts").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Build once for the whole module: it takes a few seconds."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFTOVERS))
    out = tmp / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=300, cwd=tmp,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sdists = list(out.glob("*.tar.gz"))
    wheels = list(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, list(out.iterdir())
    yield Built(sdists[0], wheels[0])


def test_wheel_is_pure_python_for_every_python(built: Built) -> None:
    assert built.wheel.name == f"opchatgpts-{__version__}-py3-none-any.whl"
    assert built.wheel_info["Root-Is-Purelib"] == "true"


def test_wheel_holds_every_file_of_the_package(built: Built) -> None:
    # Data files too (py.typed, and whatever a subpackage such as the emulator may ship).
    missing = [f for f in _package_files() if f not in built.wheel_files]
    assert missing == []
    for needed in ("opchatgpts/py.typed", "opchatgpts/__main__.py",
                   "opchatgpts/_protocol/__init__.py", "opchatgpts/_transports/__init__.py"):
        assert needed in built.wheel_files
    # The emulator, a module or a package.
    assert any(f.startswith("opchatgpts/emulator") and f.endswith(".py") for f in built.wheel_files)


def test_wheel_holds_nothing_else(built: Built) -> None:
    stray = [f for f in built.wheel_files if not f.startswith(("opchatgpts/", built.dist_info))]
    assert stray == []  # no tests/ or bench/ installed as top-level packages


def test_wheel_installs_the_console_script(built: Built) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(built.entry_points)
    assert dict(entry_points["console_scripts"]) == {"opchatgpts": "opchatgpts.__main__:main"}
    import opchatgpts.__main__

    assert callable(opchatgpts.__main__.main)


def test_license_ships_in_both(built: Built) -> None:
    license_text = (ROOT / "LICENSE").read_bytes()
    assert license_text.startswith(b"MIT License") and b"2026 the opchatgpts developers" in license_text
    assert built.sdist_files >= {"LICENSE", "README.rst", "setup.cfg", "setup.py"}
    assert built.wheel_license == [license_text]
    for metadata in (built.wheel_metadata, built.sdist_metadata):
        assert metadata["License"] == "MIT"
        assert metadata.get_all("License-File") == ["LICENSE"]


def test_sdist_can_run_the_test_suite(built: Built) -> None:
    # Packagers run the tests from the sdist: all of tests/ (helpers and captures too), and
    # bench/ and the Makefile that tests use.
    def tree(folder: str) -> Dict[str, int]:
        return {
            p.relative_to(ROOT).as_posix(): p.stat().st_size
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
        }

    wanted = {**tree("tests"), **tree("bench")}
    assert "tests/conftest.py" in wanted and "bench/run.py" in wanted
    missing = sorted(set(wanted) - built.sdist_files)
    assert missing == []
    assert "Makefile" in built.sdist_files
    assert [f for f in _package_files() if f not in built.sdist_files] == []
    assert not [f for f in built.sdist_files if "__pycache__" in f or f.endswith(".pyc")]


def test_metadata_says_what_pip_needs(built: Built) -> None:
    for metadata in (built.wheel_metadata, built.sdist_metadata):
        assert metadata["Name"] == "opchatgpts"
        assert metadata["Version"] == __version__
        assert metadata["Requires-Python"] == ">=3.9"
        requires = metadata.get_all("Requires-Dist") or []
        assert {r.split(">")[0].split("=")[0].strip() for r in requires if "extra ==" not in r} == {
            "aiohttp", "tenacity", "requests", "urllib3", "typing_extensions"
        }


def test_readme_renders_as_the_long_description(built: Built) -> None:
    # What PyPI (and ``twine check``) do with it: readme_renderer, warnings count as failures.
    from readme_renderer.rst import render

    for metadata in (built.wheel_metadata, built.sdist_metadata):
        assert metadata["Description-Content-Type"] == "text/x-rst"
        description = metadata.get_payload()
        assert isinstance(description, str)
        assert description.strip() == (ROOT / "README.rst").read_text(encoding="utf-8").strip()
        warnings = io.StringIO()
        html = render(description, stream=warnings)
        assert warnings.getvalue() == ""
        assert html is not None and "Quick start" in html
