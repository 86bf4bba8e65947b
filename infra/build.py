"""Build the Lambda artifacts without Docker, for the runtime and architecture template.yaml declares.

The local Python (3.11) is not the Lambda runtime's, so ``sam build`` cannot be trusted to pick
the interpreter. Instead pip installs the wheels built for the Lambda platform
(``--platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 ... --python-version 3.13
--only-binary=:all:``) into ``.aws-sam/build/<Function>/``, the function code is copied beside them,
and ``.aws-sam/build/template.yaml`` points each function's CodeUri there; ``sam deploy`` picks it up.

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


def install_dependencies(requirements: Path, destination: Path, target: Target) -> None:
    """pip-install the requirements' wheels for the Lambda platform into destination."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    command += [*target.pip_options(), "--target", str(destination), "--requirement", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise BuildError(f"pip could not install {requirements} for {target}:\n{result.stderr.strip()}")


def _block_strings(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line strings (the dashboard body) stay readable in the built template.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


class _TemplateDumper(yaml.SafeDumper):
    """Writes long-form intrinsics as plain mappings, multi-line strings as blocks."""


_TemplateDumper.add_representer(str, _block_strings)


def pinned(template: dict[str, Any], runtime: str) -> dict[str, Any]:
    """A copy of the template for artifacts built for ``runtime``: that runtime only, no shared CodeUri.

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
    return built


def build(*, root: Path = ROOT, build_dir: Path = DEFAULT_BUILD_DIR, runtime: str | None = None) -> Path:
    """Build every function into build_dir/<LogicalId>/ and write build_dir/template.yaml; return its path.

    ``runtime`` overrides the template's Runtime default; the built template then defaults to it too,
    so the artifact and the deployed runtime agree.
    """
    template = load_template(root / "template.yaml")
    runtime = runtime or str(template["Parameters"]["Runtime"]["Default"])
    functions = functions_of(template, root, runtime)
    missing = [str(f.handler_file().relative_to(root)) for f in functions if not f.handler_file().is_file()]
    if missing:
        raise BuildError(f"handler modules not found: {', '.join(missing)}")

    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    built = pinned(template, runtime)
    with tempfile.TemporaryDirectory(prefix="broker-tokens-deps-") as scratch:
        installed: dict[tuple[Path, Target], Path] = {}
        for function in functions:
            key = (function.code_dir, function.target)
            if key not in installed:
                installed[key] = Path(scratch, str(len(installed)))
                install_dependencies(function.code_dir / "requirements.txt", installed[key], function.target)
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
    args = parser.parse_args(argv)
    try:
        built_template = build(build_dir=args.build_dir, runtime=args.runtime)
    except BuildError as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    print(f"built {built_template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
