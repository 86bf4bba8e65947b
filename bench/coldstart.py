"""Cold start: what importing each Lambda handler costs, against ``import boto3`` alone, and the artifact size.

What is measured is the part of a cold start the code decides: Lambda's init phase runs the handler
module's import, and that import is timed inside a fresh interpreter (``time.perf_counter()`` just
before and just after ``import module``), so neither the interpreter's start (the same for every
function) nor its exit is counted. The exit matters: a process that ends tears its modules down (the
garbage collector and module cleanup, tens of ms for boto3 and more for a handler), which a Lambda
sandbox never pays on a cold start (it is frozen between requests and discarded, not torn down per
request). Each command (``pass``, ``import boto3``, ``import refresher.app``, ``import token_api.app``,
``import person_pages.app``) runs in ``rounds`` fresh processes, interleaved round by round so that
machine noise hits all alike, with the packages the artifact does not ship hidden, as in Lambda; a
command's import time is the median of its in-process times. One unmeasured round first writes the
bytecode caches, as the deployed artifact ships none but a warm disk cache is what a local run can
compare fairly. Target: each handler <= 1.3 x boto3's import (issue 15: the token API and the person
pages load no adapter, requests, pyjwt or pyotp until a login or a signature runs; the refresher loads
the logout only for a logout run and pyotp only when a code is made).

For transparency each ratio's note also gives the earlier yardstick, from the same processes: the
whole process's wall time (start to exit, as the parent sees it) minus ``pass``'s, which charges the
teardown too. Each handler's note names its costliest imports beyond boto3's, from
``python -X importtime`` (the first top-level packages by their modules' own time).

The artifact: ``infra.build.build`` (what ``make build`` runs) into a temporary directory, for the
template's runtime and architecture; each function's unzipped size without boto3/botocore (the
Lambda runtime provides them; the build does not ship them). Target: <= 3 MB (10^6 bytes), with
Powertools from AWS's layer (the template's default).

Example:
    >>> result = measure(rounds=3, build=False)                  # doctest: +SKIP
    >>> result.ratio("refresher.app") < 1.3                        # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import ROOT, Figure, median

NAME = "cold start"
HANDLERS = ("refresher.app", "token_api.app", "person_pages.app")
BASELINE = "boto3"
TARGET_RATIO = 1.3
TARGET_BYTES = 3_000_000
# Provided by the Lambda runtime: never counted in the artifact (infra.build leaves them out anyway).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "six")
COSTLIEST = 3
# In the dev environment (a moto dependency) but not in functions/requirements.txt, so not in Lambda.
NOT_IN_ARTIFACT = ("cryptography",)


def fresh_python(code: str, *options: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that sees the functions as Lambda does, packages the artifact
    does not ship hidden (pyjwt, for one, loads ``cryptography`` whenever it can, and moto brings it into
    the dev environment); its output captured, an error raised if it fails.

    Example:
        >>> fresh_python("import sys; print('cryptography' in sys.modules)").stdout
        'True\\n'
    """
    hide = "".join(f"sys.modules[{name!r}] = None; " for name in NOT_IN_ARTIFACT)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    # The unmeasured first round writes the bytecode caches (see the module docstring), even where the
    # environment says not to (PYTHONDONTWRITEBYTECODE): boto3 is read from its caches, so are we.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.run(
        [sys.executable, *options, "-c", f"import sys; {hide}\n{code}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@dataclass(frozen=True)
class Run:
    """One fresh process: its wall seconds as the parent saw them (start to exit), and the seconds its
    import took inside it (next to nothing for ``pass``)."""

    wall: float
    inside: float


def timed_import(module: str | None) -> Run:
    """Run ``import module`` (``pass`` when module is None) in a fresh interpreter, timed from outside
    (the whole process) and from inside (the import alone).

    Example:
        >>> run = timed_import(None)
        >>> run.inside < run.wall
        True
    """
    statement = f"import {module}" if module else "pass"
    # The clock is read right around the statement: the interpreter's start is behind it, its exit ahead.
    code = "\n".join(
        [
            "from time import perf_counter as _clock",
            "_started = _clock()",
            statement,
            "print(repr(_clock() - _started))",
        ]
    )
    started = time.perf_counter()
    done = fresh_python(code)
    wall = time.perf_counter() - started
    return Run(wall=wall, inside=float(done.stdout.splitlines()[-1]))


def costliest_imports(module: str, *, count: int = COSTLIEST) -> list[tuple[str, float]]:
    """The packages ``import module`` loads beyond boto3's, costliest first, by own ms (``-X importtime``).

    Example:
        >>> [name for name, _ in costliest_imports("json", count=1)]   # doctest: +SKIP
        ['json']
    """
    done = fresh_python(f"import {BASELINE}; import {module}", "-X", "importtime")
    return top_packages(done.stderr, after=BASELINE, count=count)


def top_packages(importtime: str, *, after: str, count: int) -> list[tuple[str, float]]:
    """From ``-X importtime`` output: the costliest packages loaded after ``after``, each the sum of its
    modules' own times (ms; a module's children are counted under their own package).

    Example:
        >>> lines = ["import time: 5 | 900 | boto3", "import time: 40 | 40 |   b.c", "import time: 9 | 60 | b",
        ...          "import time: 30 | 30 | a"]
        >>> top_packages("\\n".join(lines), after="boto3", count=2)
        [('b', 0.049), ('a', 0.03)]
    """
    totals: dict[str, float] = {}
    started = False
    for line in importtime.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].rsplit(":", 1)[-1].strip().isdigit():
            continue
        name = parts[2].strip()
        if not started:
            started = name == after
            continue
        package = name.split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(parts[0].rsplit(":", 1)[-1]) / 1000
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


def directory_bytes(path: Path, *, skip: tuple[str, ...] = ()) -> int:
    """Bytes of every file under ``path``, leaving out top-level entries named (or prefixed) in ``skip``.

    Example:
        >>> directory_bytes(Path("/nonexistent"))
        0
    """
    total = 0
    if not path.is_dir():
        return 0
    for entry in path.iterdir():
        if any(entry.name == name or entry.name.startswith(f"{name}-") for name in skip):
            continue
        if entry.is_file():
            total += entry.stat().st_size
        elif entry.is_dir():
            total += sum(item.stat().st_size for item in entry.rglob("*") if item.is_file())
    return total


@dataclass
class ColdStartResult:
    """Median import seconds per module (timed inside each fresh process), and artifact bytes per function.

    ``interpreter`` is the median wall time of ``pass`` (start and exit); ``whole_process`` is each
    module's median wall time minus that, the earlier yardstick, teardown included.
    """

    rounds: int
    imports: dict[str, float]
    interpreter: float
    whole_process: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, int] = field(default_factory=dict)
    costliest: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    zipped: dict[str, int] = field(default_factory=dict)
    build_error: str | None = None

    def ratio(self, module: str) -> float:
        """A handler's import time over boto3's."""
        return self.imports[module] / self.imports[BASELINE]

    def whole_process_ratio(self, module: str) -> float | None:
        """The same ratio by whole-process wall times (exit included), or None when not measured."""
        if not self.whole_process.get(BASELINE) or module not in self.whole_process:
            return None
        return self.whole_process[module] / self.whole_process[BASELINE]

    def figures(self) -> list[Figure]:
        """The table rows."""
        rows = [
            Figure(
                NAME,
                "import boto3 (the yardstick)",
                self.imports[BASELINE] * 1000,
                "ms",
                note=f"median of {self.rounds} fresh processes each, the import timed inside the process: "
                f"interpreter start and exit not counted (python -c pass: {self.interpreter * 1000:.0f} ms)",
            )
        ]
        for module in HANDLERS:
            rows += [
                Figure(NAME, f"import {module}", self.imports[module] * 1000, "ms", note=self._costliest(module)),
                Figure(
                    NAME,
                    f"{module} / boto3",
                    self.ratio(module),
                    "x",
                    target=f"<= {TARGET_RATIO:g}",
                    ok=self.ratio(module) <= TARGET_RATIO,
                    note=self._whole_process(module),
                ),
            ]
        rows += self._artifact_rows()
        return rows

    def _costliest(self, module: str) -> str:
        found = self.costliest.get(module)
        if not found:
            return ""
        named = ", ".join(f"{name} {ms:.0f} ms" for name, ms in found)
        return f"costliest packages beyond boto3 (-X importtime, own time of their modules): {named}"

    def _whole_process(self, module: str) -> str:
        ratio = self.whole_process_ratio(module)
        if ratio is None:
            return ""
        return (
            f"not a target: whole process, exit (teardown) included, minus python -c pass: "
            f"{self.whole_process[module] * 1000:.0f} ms against boto3's "
            f"{self.whole_process[BASELINE] * 1000:.0f} ms, {ratio:.2f}x"
        )

    def _artifact_rows(self) -> list[Figure]:
        rows = []
        if self.build_error:
            rows.append(
                Figure(
                    NAME,
                    "artifact, unzipped",
                    None,
                    "",
                    target="<= 3 MB",
                    ok=False,
                    note=f"make build failed here: {self.build_error}",
                )
            )
        for function, size in self.artifacts.items():
            rows.append(
                Figure(
                    NAME,
                    f"{function} artifact, unzipped, without boto3",
                    size / 1e6,
                    "MB",
                    target="<= 3 MB",
                    ok=size <= TARGET_BYTES,
                    note=f"{self.zipped.get(function, 0) / 1e6:.2f} MB zipped",
                )
            )
        return rows


def measure(*, rounds: int = 7, build: bool = True) -> ColdStartResult:
    """Time the imports, then build the artifacts into a temporary directory and weigh them."""
    commands: list[str | None] = [None, BASELINE, *HANDLERS]
    for module in commands:  # bytecode caches written, not measured
        timed_import(module)
    runs: dict[str | None, list[Run]] = {module: [] for module in commands}
    for _ in range(rounds):
        for module in commands:
            runs[module].append(timed_import(module))
    interpreter = median([run.wall for run in runs[None]])
    imports = {str(module): median([run.inside for run in runs[module]]) for module in commands if module}
    whole = {
        str(module): max(0.0, median([run.wall for run in runs[module]]) - interpreter) for module in commands if module
    }
    result = ColdStartResult(rounds, imports, interpreter, whole)
    result.costliest = {module: costliest_imports(module) for module in HANDLERS}
    if build:
        _weigh_artifacts(result)
    return result


def _weigh_artifacts(result: ColdStartResult) -> None:
    """Build with infra.build (pip fetches the Lambda-platform wheels) and record each function's size."""
    from infra.build import BuildError, build  # noqa: PLC0415 - needs PyYAML and pip only when building

    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        build_dir = Path(scratch, "build")
        try:
            build(build_dir=build_dir)
        except (BuildError, OSError, subprocess.SubprocessError) as error:
            result.build_error = str(error).splitlines()[0][:200]
            return
        for function in sorted(entry for entry in build_dir.iterdir() if entry.is_dir()):
            result.artifacts[function.name] = directory_bytes(function, skip=RUNTIME_PROVIDED)
            archive = shutil.make_archive(str(Path(scratch, function.name)), "zip", function)
            result.zipped[function.name] = Path(archive).stat().st_size
