"""Mutation testing of the protocol core (``opchatgpts/_protocol/``) with cosmic-ray.

    make mutation          every mutant of every module (slow: see the README's timing)
    make mutation-quick    a fixed-seed sample of about 10 mutants per module

Every ``.py`` file of ``opchatgpts/_protocol/`` is a module to mutate; ``tools/mutation.ini``
names the fast tests of each. The mutants are cosmic-ray's core operators plus statement
deletion (one statement of a function body replaced by ``pass``). Each mutant is written into
a private copy of the project and tested there, so the work tree is never touched.

Mutants listed in ``tools/mutation-equivalents.txt`` behave exactly like the original: they do
not count. The list is keyed by module, function, operator and the changed line, not by line
number; an entry that matches no mutant any more is reported as stale.
"""

from __future__ import annotations

import argparse
import compileall
import configparser
import difflib
import multiprocessing
import multiprocessing.context
import os
import py_compile
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Dict, Iterator, List, Optional, Tuple

import parso
from cosmic_ray import plugins
from cosmic_ray.ast import ast_nodes, get_ast
from cosmic_ray.ast.ast_query import ASTQuery
from cosmic_ray.exceptions import CosmicRayTestingException
from cosmic_ray.mutating import mutate_code
from cosmic_ray.operators import exception_replacer
from cosmic_ray.operators import provider as core_operators
from cosmic_ray.operators.operator import Example, Operator

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "opchatgpts" / "_protocol"
CONFIG = Path(__file__).with_name("mutation.ini")
EQUIVALENTS = Path(__file__).with_name("mutation-equivalents.txt")


class DeleteStatement(Operator):
    """Replace one simple statement of a function body with ``pass``."""

    SKIPPED = {"string", "import_name", "import_from", "global_stmt", "nonlocal_stmt"}

    def mutation_positions(self, node):  # type: ignore[no-untyped-def]
        if node.type != "simple_stmt" or len(node.children) != 2:
            return
        statement = node.children[0]
        if statement.type in self.SKIPPED or statement.get_code().strip() == "pass":
            return
        parent = node.parent
        while parent is not None and parent.type not in ("funcdef", "classdef"):
            parent = parent.parent
        if parent is not None and parent.type == "funcdef":
            yield (statement.start_pos, statement.end_pos)

    def mutate(self, node, index):  # type: ignore[no-untyped-def]
        statement = node.children[0]
        prefix = statement.get_first_leaf().prefix
        node.children[0] = parso.python.tree.Keyword("pass", statement.start_pos, prefix=prefix)
        return node

    @classmethod
    def examples(cls):  # type: ignore[no-untyped-def]
        return (Example("def f():\n    x = 1\n", "def f():\n    pass\n"),)


plugins.OPERATOR_PROVIDERS["extra"] = {"DeleteStatement": DeleteStatement}


class ExceptionReplacer(exception_replacer.ExceptionReplacer):
    """cosmic-ray's, which fails on a dotted name (``except (binascii.Error, ValueError)``):
    each exception named by the clause, dotted or not, is replaced in turn."""

    def mutate(self, node, index):  # type: ignore[no-untyped-def]
        named = self._name_nodes(node)[index]
        replacement = parso.python.tree.Name(
            CosmicRayTestingException.__name__, named.start_pos, prefix=named.get_first_leaf().prefix
        )
        siblings = named.parent.children
        siblings[siblings.index(named)] = replacement
        replacement.parent = named.parent
        return node

    @staticmethod
    def _name_nodes(node):  # type: ignore[no-untyped-def]
        named = node.children[1]
        if named.type == "atom":  # (A, B) or (A)
            named = named.children[1]
        return tuple(named.children[::2]) if named.type == "testlist_comp" else (named,)


core_operators._OPERATORS["ExceptionReplacer"] = ExceptionReplacer


@dataclass
class Mutant:
    module: str  # "decoder"
    operator: str  # "core/NumberReplacer"
    occurrence: int
    line: int
    definition: str  # the enclosing function or class, "-" at module level
    before: str  # the first changed line, stripped
    after: str
    code: str  # the whole mutated module
    nth: int = 0  # 1, 2... when the same change can be made to several identical lines
    equivalent: Optional[str] = None  # why, when listed
    outcome: str = ""  # "killed", "survived", "timeout"

    @property
    def key(self) -> Tuple[str, ...]:
        return (self.module, self.definition, self.operator, str(self.nth), self.before, self.after)

    def describe(self) -> str:
        nth = f" #{self.nth}" if self.nth else ""
        return (
            f"  [{self.module}.{self.definition}] {self.operator}{nth}  (line {self.line})\n"
            f"  - {self.before}\n  + {self.after}"
        )


def modules() -> List[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def operators() -> Iterator[Tuple[str, Operator]]:
    for name in plugins.operator_names():
        operator_class = plugins.get_operator(name)
        if not operator_class.arguments():  # those that need arguments are not configured
            yield name, operator_class()


def mutants_of(module: str) -> List[Mutant]:
    source = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
    tree = get_ast(source)
    found = []
    for name, operator in operators():
        nodes = [
            (node, start) for node in ast_nodes(tree) for start, _ in operator.mutation_positions(node)
        ]
        for occurrence, (node, start) in enumerate(nodes):
            code = mutate_code(source, operator, occurrence)
            if code is None or code == source:
                continue
            before, after = changed_lines(source, code)
            definition = ASTQuery(node).get_definition_name() or "-"
            found.append(Mutant(module, name, occurrence, start[0], definition, before, after, code))
    same: Dict[Tuple[str, ...], List[Mutant]] = {}
    for mutant in found:
        same.setdefault(mutant.key, []).append(mutant)
    for group in same.values():
        if len(group) > 1:
            for nth, mutant in enumerate(sorted(group, key=lambda m: m.line), 1):
                mutant.nth = nth
    return found


def changed_lines(old: str, new: str) -> Tuple[str, str]:
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("-") and not line.startswith("---"):
            removed.append(line[1:].strip())
        elif line.startswith("+") and not line.startswith("+++"):
            added.append(line[1:].strip())
    return (removed or [""])[0], (added or [""])[0]


def read_equivalents() -> Dict[Tuple[str, ...], str]:
    """The listed equivalent mutants: key -> why."""
    entries: Dict[Tuple[str, ...], str] = {}
    text = EQUIVALENTS.read_text(encoding="utf-8") if EQUIVALENTS.exists() else ""
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.strip().splitlines() if not line.startswith("#")]
        if not lines:
            continue
        head = re.fullmatch(r"\[(\w+)\.(\S+)\] (\S+)(?: #(\d+))?", lines[0])
        fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
        if head is None or set(fields) != {"-", "+", "why:"}:
            sys.exit(f"{EQUIVALENTS.name}: cannot read the entry\n{block.strip()}")
        module, definition, operator, nth = head.groups()
        key = (module, definition, operator, nth or "0", fields["-"].strip(), fields["+"].strip())
        entries[key] = fields["why:"]
    return entries


def read_tests() -> Dict[str, List[str]]:
    config = configparser.ConfigParser()
    config.read(CONFIG, encoding="utf-8")
    return {module: tests.split() for module, tests in config["tests"].items()}


# The libraries the tests import, loaded once in a fork server: each test run is a fork of
# it, which saves two seconds a mutant. The package itself is imported fresh by each run.
PRELOAD = ["__main__", "pytest", "hypothesis", "aiohttp", "aioresponses", "requests", "responses",
           "tenacity", "psutil", "trustme"]


def run_pytest(root: str, tests: List[str]) -> None:
    """In a forked child: pytest in ``root``, silent, with the package imported from ``root``."""
    os.chdir(root)
    sys.path.insert(0, root)
    sys.dont_write_bytecode = True
    os.environ["HYPOTHESIS_PROFILE"] = "ci"  # the same examples every run
    devnull = os.open(os.devnull, os.O_WRONLY)
    if not os.environ.get("MUTATION_DEBUG"):
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    import pytest

    # The preloaded plugins cannot have their asserts rewritten, and pytest says so.
    quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    sys.exit(int(pytest.main(["-x", "-q", "--no-header", *quiet, *tests])))


class Sandbox:
    """A private copy of the project in which one mutant at a time is tested."""

    def __init__(self, where: Path, context: multiprocessing.context.BaseContext) -> None:
        self.root = where
        self.context = context
        ignore = shutil.ignore_patterns(".venv*", ".git", "__pycache__", "*.egg-info", ".hypothesis")
        shutil.copytree(ROOT, where, ignore=ignore)
        # Checked by hash, so a mutant never meets the bytecode of another.
        compileall.compile_dir(where, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)

    def run(self, module: str, code: Optional[str], tests: List[str], timeout: float) -> str:
        """Test the module with ``code`` in place of its source; "killed", "survived" or "timeout"."""
        path = self.root / "opchatgpts" / "_protocol" / f"{module}.py"
        original = path.read_text(encoding="utf-8")
        if code is not None:
            path.write_text(code, encoding="utf-8")
        try:
            process = self.context.Process(target=run_pytest, args=(str(self.root), tests))
            process.start()
            process.join(timeout)
            if process.exitcode is None:
                process.kill()
                process.join()
                return "timeout"
            return "survived" if process.exitcode == 0 else "killed"
        finally:
            path.write_text(original, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="only these modules (default: every one)")
    parser.add_argument("--sample", type=int, help="test this many mutants per module, chosen by --seed")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 if a module scores less")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    args = parser.parse_args()

    tests = read_tests()
    chosen = args.modules or modules()
    unmapped = [m for m in chosen if m not in tests]
    if unmapped:
        sys.exit(f"no fast tests named for {', '.join(unmapped)}: add them to {CONFIG.name}")
    equivalents = read_equivalents()
    used = set()
    plan: Dict[str, List[Mutant]] = {}
    listed: Dict[str, int] = {}  # the equivalents of each module, run or not
    for module in chosen:
        mutants = mutants_of(module)
        for mutant in mutants:
            mutant.equivalent = equivalents.get(mutant.key)
            if mutant.equivalent is not None:
                used.add(mutant.key)
        listed[module] = sum(m.equivalent is not None for m in mutants)
        if args.sample is not None:
            real = [m for m in mutants if m.equivalent is None]
            mutants = random.Random(f"{args.seed}:{module}").sample(real, min(args.sample, len(real)))
        plan[module] = mutants
    stale = [key for key in equivalents if key[0] in chosen and key not in used]
    if args.list:
        for mutant in (m for ms in plan.values() for m in ms):
            print(mutant.describe() + ("\n  (equivalent)" if mutant.equivalent else ""))
        print_stale(stale)
        return 0

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        sandboxes: "Queue[Sandbox]" = Queue()
        for index in range(args.jobs):
            sandboxes.put(Sandbox(Path(tmp) / str(index), context))
        lock = threading.Lock()

        def run(module: str, mutant: Optional[Mutant], timeout: float) -> str:
            sandbox = sandboxes.get()
            try:
                return sandbox.run(module, mutant.code if mutant else None, tests[module], timeout)
            finally:
                sandboxes.put(sandbox)

        def test(mutant: Mutant, timeout: float) -> None:
            mutant.outcome = run(mutant.module, mutant, timeout)
            with lock:
                mark = {"killed": ".", "timeout": "t", "survived": "S"}[mutant.outcome]
                if mark == "S" and not mutant.equivalent:
                    mark = "S\n" + mutant.describe() + "\n"  # at once: a long run need not end first
                print(mark, end="", flush=True)

        with ThreadPoolExecutor(args.jobs) as pool:
            for module, mutants in plan.items():
                clock = time.monotonic()
                if run(module, None, 600) != "survived":
                    sys.exit(f"\nthe tests of {module} fail without any mutation: {' '.join(tests[module])}")
                timeout = 5 * (time.monotonic() - clock) + 30  # generous: a busy machine is no kill
                print(f"{module}: {len(mutants)} mutants ", end="", flush=True)
                list(pool.map(test, mutants, [timeout] * len(mutants)))
                print()
    return report(plan, listed, stale, time.monotonic() - started, args.fail_under)


def print_stale(stale: List[Tuple[str, ...]]) -> None:
    if stale:
        print(f"\nstale entries in {EQUIVALENTS.name} (no such mutant any more):")
        for key in stale:
            nth = f" #{key[3]}" if key[3] != "0" else ""
            print(f"  [{key[0]}.{key[1]}] {key[2]}{nth}\n  - {key[4]}\n  + {key[5]}")


def report(
    plan: Dict[str, List[Mutant]], listed: Dict[str, int], stale: List[Tuple[str, ...]], seconds: float,
    fail_under: float,
) -> int:
    survivors = [m for ms in plan.values() for m in ms if m.outcome == "survived" and not m.equivalent]
    if survivors:
        print(f"\nsurvivors ({len(survivors)}):")
        for mutant in survivors:
            print(mutant.describe())
    wrong = [m for ms in plan.values() for m in ms if m.equivalent and m.outcome != "survived"]
    if wrong:
        print(f"\nlisted as equivalent in {EQUIVALENTS.name}, yet killed by the tests:")
        for mutant in wrong:
            print(mutant.describe())
    print_stale(stale)
    print(f"\ntook {seconds / 60:.1f} min")
    total_killed = total_real = total_equivalent = 0
    failing = False
    for module, mutants in plan.items():
        real = [m for m in mutants if not m.equivalent]
        killed = sum(m.outcome in ("killed", "timeout") for m in real)
        score = 100.0 * killed / len(real) if real else 100.0
        failing = failing or score < fail_under
        total_killed += killed
        total_real += len(real)
        total_equivalent += listed[module]
        print(f"{module:<10} {score:5.1f}%  (killed {killed} of {len(real)}, equivalents {listed[module]})")
    score = 100.0 * total_killed / total_real if total_real else 100.0
    print(
        f"mutation score: {score:.1f}% "
        f"(killed {total_killed} of {total_real}, equivalents {total_equivalent})"
    )
    return 1 if failing or wrong else 0


if __name__ == "__main__":
    sys.exit(main())
