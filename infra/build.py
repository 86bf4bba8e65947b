"""Build the Lambda artifacts without Docker, for the runtime and architecture template.yaml declares.

The local Python (3.11) is not the Lambda runtime's, so ``sam build`` cannot be trusted to pick
the interpreter. Instead pip installs the wheels built for the Lambda platform
(``--platform manylinux2014_aarch64 --python-version 3.13 --only-binary=:all:``) into
``.aws-sam/build/<Function>/``, the function code is copied beside them, and
``.aws-sam/build/template.yaml`` points each function's CodeUri there; ``sam deploy`` picks it up.

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
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
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
        >>> Target.of("python3.13", "arm64").pip_options()[:2]
        ['--platform', 'manylinux2014_aarch64']
    """

    python_version: str
    platform: str

    @classmethod
    def of(cls, runtime: str, architecture: str) -> Target:
        """The target of a Lambda runtime name ("python3.13") and architecture ("arm64" or "x86_64")."""
        if not runtime.startswith("python") or architecture not in PLATFORMS:
            raise BuildError(f"cannot build for runtime {runtime!r} on {architecture!r}")
        return cls(python_version=runtime.removeprefix("python"), platform=PLATFORMS[architecture])

    def pip_options(self) -> list[str]:
        """pip's options that select this platform's wheels and nothing that needs compiling."""
        return [
            "--platform",
            self.platform,
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
    built = copy.deepcopy(template)
    built["Parameters"]["Runtime"]["Default"] = runtime
    built.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
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
