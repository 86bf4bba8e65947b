"""Build the Lambda artifacts without Docker, for the runtime and architecture template.yaml declares.

The local Python (3.11) is not the Lambda runtime's, so ``sam build`` cannot be trusted to pick
the interpreter. Instead pip installs the wheels built for the Lambda platform
(``--platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 ... --python-version 3.13
--only-binary=:all:``) into ``.aws-sam/build/<Function>/``, the function code is copied beside them,
and ``.aws-sam/build/template.yaml`` points each function's CodeUri there; ``sam deploy`` picks it up.

What ships is only what Lambda lacks (issue 15: each artifact <= 3 MB unzipped): Powertools comes from
AWS's public layer when the template's ``PowertoolsLayerArn`` is set (its default), and is bundled only
when it is empty; whatever the runtime already has (boto3, botocore, s3transfer, jmespath, dateutil,
six) is left out even when a dependency pulls it in; so are tests, type stubs, pip's install records and
charset-normalizer's compiled accelerators (its pure-Python modules sit beside them and do the same work).

Lambda's Python 3.12 and 3.13 runtimes run on Amazon Linux 2023 (glibc 2.34), so wheels tagged for
glibc up to 2.34 work: pip takes each ``--platform`` tag literally (it widens only the legacy
manylinux2014 one), hence the list. The built template pins the runtime it was built for: its
Runtime parameter allows that one value only, so a deploy cannot pair the artifact with another.

Example:
    $ .venv/bin/python -m infra.build                 # what `make build` runs
    $ .venv/bin/python -m infra.build --runtime python3.12 --build-dir /tmp/artifacts
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.local.template import TEMPLATE_PATH, load_template

ROOT = TEMPLATE_PATH.parent
DEFAULT_BUILD_DIR = ROOT / ".aws-sam" / "build"
# Every glibc baseline Lambda's Amazon Linux 2023 (glibc 2.34) runs; newest wheels first in pip's eyes.
GLIBC_TAGS = ("manylinux2014", "manylinux_2_28", "manylinux_2_34")
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
# Never shipped: build leftovers and the list pip already installed from.
_NOT_CODE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "requirements.txt")
# In every Lambda Python runtime already (boto3 and what it depends on): never shipped.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "six")
POWERTOOLS = "aws-lambda-powertools"
POWERTOOLS_PARAMETER = "PowertoolsLayerArn"
# Console scripts pip writes (charset-normalizer's "normalizer"): nothing runs them in Lambda.
_SCRIPTS = "bin"
# Inside installed packages: never imported at run time.
_NOT_RUNTIME_FILES = ("*.pyi", "py.typed")
_NOT_RUNTIME_DIRS = ("tests", "__pycache__")
# pip's bookkeeping in *.dist-info (METADATA, licenses and entry points stay: importlib.metadata reads them).
_INSTALL_RECORDS = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
# Compiled twins of pure-Python modules shipped beside them (mypyc): the .py files do the same work.
_OPTIONAL_ACCELERATORS = ("charset_normalizer/*.so",)


class BuildError(Exception):
    """The template or the code cannot be built into Lambda artifacts.

    Example:
        >>> str(BuildError("no handler module refresher/app.py"))
        'no handler module refresher/app.py'
    """


@dataclass(frozen=True)
class Target:
    """The Lambda platform pip installs wheels for.

    Example:
        >>> Target.of("python3.13", "arm64").pip_options()[:4]
        ['--platform', 'manylinux2014_aarch64', '--platform', 'manylinux_2_28_aarch64']
    """

    python_version: str
    platforms: tuple[str, ...]

    @classmethod
    def of(cls, runtime: str, architecture: str) -> Target:
        """The target of a Lambda runtime name ("python3.13") and architecture ("arm64" or "x86_64")."""
        if not runtime.startswith("python") or architecture not in MACHINES:
            raise BuildError(f"cannot build for runtime {runtime!r} on {architecture!r}")
        platforms = tuple(f"{tag}_{MACHINES[architecture]}" for tag in GLIBC_TAGS)
        return cls(python_version=runtime.removeprefix("python"), platforms=platforms)

    def pip_options(self) -> list[str]:
        """pip's options that select this platform's wheels and nothing that needs compiling."""
        return [
            *(option for platform in self.platforms for option in ("--platform", platform)),
            "--python-version",
            self.python_version,
            "--implementation",
            "cp",
            "--only-binary=:all:",
        ]


@dataclass(frozen=True)
class Function:
    """One AWS::Serverless::Function of the template, with what building it needs."""

    logical_id: str
    code_dir: Path
    handler: str
    target: Target

    def handler_file(self) -> Path:
        """The module file the handler names: "refresher.app.lambda_handler" -> refresher/app.py."""
        module = self.handler.rsplit(".", 1)[0]
        return self.code_dir.joinpath(*module.split(".")).with_suffix(".py")


def functions_of(template: dict[str, Any], root: Path, runtime: str) -> list[Function]:
    """The template's functions, with Globals applied as SAM applies them."""
    shared = template.get("Globals", {}).get("Function", {})
    functions = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = {**shared, **resource.get("Properties", {})}
        code_uri = properties.get("CodeUri")
        if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
            raise BuildError(f"{logical_id}: CodeUri must be a local directory, got {code_uri!r}")
        (architecture,) = properties.get("Architectures", ["x86_64"])
        functions.append(Function(logical_id, root / code_uri, properties["Handler"], Target.of(runtime, architecture)))
    return functions


def powertools_from_layer(template: dict[str, Any]) -> bool:
    """True when the template's functions take Powertools from AWS's layer (its ARN parameter's default is set).

    Example:
        >>> powertools_from_layer(load_template())
        True
    """
    parameter = template.get("Parameters", {}).get(POWERTOOLS_PARAMETER)
    return bool(parameter and str(parameter.get("Default", "")).strip())


def requirements_without(requirements: Path, left_out: tuple[str, ...], destination: Path) -> Path:
    """A copy of a requirements file without the named distributions (``destination``); the original if none.

    Example:
        >>> import tempfile
        >>> scratch = Path(tempfile.mkdtemp())
        >>> lean = requirements_without(ROOT / "functions" / "requirements.txt", (POWERTOOLS,), scratch / "r.txt")
        >>> POWERTOOLS in lean.read_text()
        False
    """
    if not left_out:
        return requirements
    kept = [
        line for line in requirements.read_text(encoding="utf-8").splitlines() if _distribution(line) not in left_out
    ]
    destination.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return destination


def _distribution(line: str) -> str:
    """The distribution a requirement line names ("" for a comment), normalized: "aws_lambda-Powertools>=3" -> ..."""
    name = re.split(r"[\s<>=!~;\[#]", line.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def prune(installed: Path) -> None:
    """Remove from installed wheels what Lambda provides or never runs (see the module docstring).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp()); (root / "boto3").mkdir(); (root / "jwt").mkdir()
        >>> (root / "jwt" / "api.pyi").touch(); prune(root)
        >>> sorted(path.name for path in root.rglob("*"))
        ['jwt']
    """
    for entry in list(installed.iterdir()):
        # The package ("six.py" too), or its "-x.y.dist-info".
        if entry.name.split("-")[0].removesuffix(".py").lower() in RUNTIME_PROVIDED:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    shutil.rmtree(installed / _SCRIPTS, ignore_errors=True)
    for directory in _NOT_RUNTIME_DIRS:
        for found in [path for path in installed.rglob(directory) if path.is_dir()]:
            shutil.rmtree(found, ignore_errors=True)
    doomed = [path for pattern in _NOT_RUNTIME_FILES for path in installed.rglob(pattern)]
    doomed += [path for name in _INSTALL_RECORDS for path in installed.glob(f"*.dist-info/{name}")]
    doomed += [path for pattern in _OPTIONAL_ACCELERATORS for path in installed.glob(pattern)]
    for path in doomed:
        path.unlink(missing_ok=True)


def install_dependencies(requirements: Path, destination: Path, target: Target) -> None:
    """pip-install the requirements' wheels for the Lambda platform into destination, then prune them."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    command += [*target.pip_options(), "--target", str(destination), "--requirement", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise BuildError(f"pip could not install {requirements} for {target}:\n{result.stderr.strip()}")
    prune(destination)


def _block_strings(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line strings (the dashboard body) stay readable in the built template.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


class _TemplateDumper(yaml.SafeDumper):
    """Writes long-form intrinsics as plain mappings, multi-line strings as blocks."""


_TemplateDumper.add_representer(str, _block_strings)


def pinned(template: dict[str, Any], runtime: str, *, powertools_layer: bool = False) -> dict[str, Any]:
    """A copy of the template for artifacts built for ``runtime``: that runtime only, no shared CodeUri;
    with ``powertools_layer`` (the artifacts lack Powertools) the layer's ARN can no longer be left empty.

    Example:
        >>> pinned(load_template(), "python3.12")["Parameters"]["Runtime"]["AllowedValues"]
        ['python3.12']
    """
    built = copy.deepcopy(template)
    built["Parameters"]["Runtime"]["Default"] = runtime
    # The wheels were chosen for this runtime's ABI (cp313...): another one must not deploy them.
    built["Parameters"]["Runtime"]["AllowedValues"] = [runtime]
    built["Parameters"]["Runtime"]["Description"] = f"Lambda Python runtime: this build is for {runtime} only."
    built.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    if powertools_layer:
        layer = built["Parameters"][POWERTOOLS_PARAMETER]
        layer["AllowedPattern"] = str(layer["AllowedPattern"]).removeprefix("^$|")
        layer["Description"] = "AWS's Powertools layer: this build leaves Powertools out, so it must be given."
    return built


def build(
    *,
    root: Path = ROOT,
    build_dir: Path = DEFAULT_BUILD_DIR,
    runtime: str | None = None,
    powertools_layer: bool | None = None,
) -> Path:
    """Build every function into build_dir/<LogicalId>/ and write build_dir/template.yaml; return its path.

    ``runtime`` overrides the template's Runtime default; the built template then defaults to it too,
    so the artifact and the deployed runtime agree. ``powertools_layer`` (default: as the template's
    ``PowertoolsLayerArn`` default says) leaves Powertools out for the layer to provide.
    """
    template = load_template(root / "template.yaml")
    if powertools_layer is None:
        powertools_layer = powertools_from_layer(template)
    runtime = runtime or str(template["Parameters"]["Runtime"]["Default"])
    functions = functions_of(template, root, runtime)
    missing = [str(f.handler_file().relative_to(root)) for f in functions if not f.handler_file().is_file()]
    if missing:
        raise BuildError(f"handler modules not found: {', '.join(missing)}")

    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    built = pinned(template, runtime, powertools_layer=powertools_layer)
    with tempfile.TemporaryDirectory(prefix="broker-tokens-deps-") as scratch:
        installed: dict[tuple[Path, Target], Path] = {}
        for function in functions:
            key = (function.code_dir, function.target)
            if key not in installed:
                installed[key] = Path(scratch, str(len(installed)))
                left_out = (POWERTOOLS,) if powertools_layer else ()
                requirements = requirements_without(
                    function.code_dir / "requirements.txt",
                    left_out,
                    Path(scratch, f"requirements-{len(installed)}.txt"),
                )
                install_dependencies(requirements, installed[key], function.target)
            artifact = build_dir / function.logical_id
            shutil.copytree(installed[key], artifact)
            shutil.copytree(function.code_dir, artifact, ignore=_NOT_CODE, dirs_exist_ok=True)
            built["Resources"][function.logical_id]["Properties"]["CodeUri"] = function.logical_id
    built_template = build_dir / "template.yaml"
    built_template.write_text(yaml.dump(built, Dumper=_TemplateDumper, sort_keys=False, width=120), encoding="utf-8")
    return built_template


def main(argv: list[str] | None = None) -> int:
    """Command line: build, print where the artifacts are."""
    parser = argparse.ArgumentParser(prog="python -m infra.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR, help="default: .aws-sam/build")
    parser.add_argument("--runtime", choices=["python3.12", "python3.13"], help="default: the template's")
    parser.add_argument(
        "--bundle-powertools",
        action="store_true",
        help="ship Powertools in each artifact (deploy then with PowertoolsLayerArn= to use no layer)",
    )
    args = parser.parse_args(argv)
    try:
        layer = False if args.bundle_powertools else None
        built_template = build(build_dir=args.build_dir, runtime=args.runtime, powertools_layer=layer)
    except BuildError as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    print(f"built {built_template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
