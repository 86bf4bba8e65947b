"""make build: Lambda-platform wheels plus the code, importable with nothing but the artifact."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from infra.build import (
    POWERTOOLS,
    ROOT,
    BuildError,
    Target,
    build,
    functions_of,
    pinned,
    powertools_from_layer,
    prune,
    requirements_without,
)
from infra.local.template import load_template

from tests.infra.cloudformation import Deployed

# Requirement name -> the module it installs. A requirement missing here fails the test on purpose.
IMPORT_NAMES = {
    "pyotp": "pyotp",
    "pyjwt": "jwt",
    "requests": "requests",
    "aws-lambda-powertools": "aws_lambda_powertools",
    "tzdata": "tzdata",
}
# What the Lambda Python runtime provides itself.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six")
# From AWS's layer when the template names it (the default): in /opt/python on Lambda, never in the artifact.
FROM_LAYER = ("aws_lambda_powertools", "typing_extensions")

PROBE = """
import importlib, json, sys
handler_module, function_name = sys.argv[1].rsplit(".", 1)
handler = getattr(importlib.import_module(handler_module), function_name)
modules = sys.argv[2].split(",")
origins = {name: importlib.import_module(name).__file__ for name in modules}
import zoneinfo
zoneinfo.reset_tzpath([])  # as on an image without /usr/share/zoneinfo: only the bundled tzdata
from datetime import datetime
kolkata = str(datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("Asia/Kolkata")).utcoffset())
print(json.dumps({"callable": callable(handler), "origins": origins, "kolkata": kolkata}))
"""


def test_target_follows_runtime_and_architecture() -> None:
    assert Target.of("python3.13", "arm64").python_version == "3.13"
    assert Target.of("python3.12", "x86_64").platforms[0] == "manylinux2014_x86_64"
    with pytest.raises(BuildError):
        Target.of("nodejs20.x", "arm64")


def test_target_accepts_every_wheel_lambdas_glibc_runs() -> None:
    # Amazon Linux 2023 (python3.12+) has glibc 2.34; pip reads each --platform tag literally.
    options = Target.of("python3.13", "arm64").pip_options()
    platforms = [options[i + 1] for i, option in enumerate(options) if option == "--platform"]

    assert platforms == ["manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"]
    assert "--only-binary=:all:" in options


def test_the_built_template_pins_the_runtime_it_was_built_for() -> None:
    built = pinned(load_template(), "python3.12")

    assert built["Parameters"]["Runtime"]["Default"] == "python3.12"
    assert built["Parameters"]["Runtime"]["AllowedValues"] == ["python3.12"]
    assert "CodeUri" not in built["Globals"]["Function"]
    assert load_template()["Parameters"]["Runtime"]["AllowedValues"] == ["python3.12", "python3.13"]  # untouched


def test_time_zones_travel_in_the_artifact() -> None:
    # Asia/Kolkata must not depend on the runtime image having /usr/share/zoneinfo.
    lines = (ROOT / "functions" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("tzdata") for line in lines)


def test_requirements_name_only_modules_this_test_knows() -> None:
    lines = (ROOT / "functions" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    names = {line.split(">=")[0].strip() for line in lines if line.strip() and not line.startswith("#")}

    assert names == set(IMPORT_NAMES)


@pytest.mark.slow
def test_build_makes_importable_artifacts_and_a_deployable_template(
    tmp_path: Path, deploy: Callable[..., Deployed]
) -> None:
    everything = deploy(TelegramChatId="424242")  # the notifier exists only with a chat id
    functions = functions_of(load_template(), ROOT, "python3.13")
    missing = [str(f.handler_file()) for f in functions if not f.handler_file().is_file()]
    if missing:
        pytest.skip(f"handler modules not written yet: {', '.join(missing)}")

    built_template = build(build_dir=tmp_path / "build")

    built = load_template(built_template)
    assert built["Parameters"]["PowertoolsLayerArn"]["AllowedPattern"].startswith("^arn:")  # no empty ARN
    assert "CodeUri" not in built["Globals"]["Function"]
    assert built["Parameters"]["Runtime"]["Default"] == "python3.13"
    assert built["Parameters"]["Runtime"]["AllowedValues"] == ["python3.13"]
    for function in functions:
        properties = built["Resources"][function.logical_id]["Properties"]
        assert properties["CodeUri"] == function.logical_id
        artifact = built_template.parent / function.logical_id
        assert not list(artifact.rglob("__pycache__"))
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(artifact),
            "AWS_DEFAULT_REGION": "ap-south-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            **everything.properties(function.logical_id)["Environment"]["Variables"],
        }
        shipped = sorted(entry.name for entry in artifact.iterdir())
        assert not [name for name in shipped if name.split("-")[0].removesuffix(".py") in RUNTIME_PROVIDED + FROM_LAYER]
        assert not [p for pattern in ("*.pyi", "py.typed", "tests", "RECORD", "*.so") for p in artifact.rglob(pattern)]
        assert "bin" not in shipped
        modules = [function.handler.rsplit(".", 2)[0], "broker_tokens", *IMPORT_NAMES.values()]
        probe = subprocess.run(
            [sys.executable, "-P", "-c", PROBE, function.handler, ",".join(modules)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
        answer = json.loads(probe.stdout.strip().splitlines()[-1])
        assert answer["callable"] is True
        assert answer["kolkata"] == "5:30:00"
        for module, origin in answer["origins"].items():
            # Powertools comes from this environment here, as from the layer in Lambda.
            from_artifact = Path(origin).is_relative_to(artifact)
            assert from_artifact is (module not in FROM_LAYER), f"{module} came from {origin}"


def test_build_refuses_a_template_without_local_code(tmp_path: Path) -> None:
    template = load_template()
    template["Globals"]["Function"]["CodeUri"] = "s3://bucket/key.zip"

    with pytest.raises(BuildError, match="CodeUri must be a local directory"):
        functions_of(template, tmp_path, "python3.13")


def test_powertools_comes_from_the_layer_by_default_and_can_be_bundled(tmp_path: Path) -> None:
    template = load_template()
    assert powertools_from_layer(template)
    template["Parameters"]["PowertoolsLayerArn"]["Default"] = ""
    assert not powertools_from_layer(template)

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\npyotp>=2.9\nAWS_Lambda.Powertools >=3.0\ntzdata\n", encoding="utf-8")
    lean = requirements_without(requirements, (POWERTOOLS,), tmp_path / "lean.txt")
    assert lean.read_text(encoding="utf-8").splitlines() == ["# comment", "pyotp>=2.9", "tzdata"]
    assert requirements_without(requirements, (), tmp_path / "same.txt") == requirements


def test_an_artifact_built_without_powertools_cannot_deploy_without_the_layer() -> None:
    layered = pinned(load_template(), "python3.13", powertools_layer=True)["Parameters"]["PowertoolsLayerArn"]
    bundled = pinned(load_template(), "python3.13")["Parameters"]["PowertoolsLayerArn"]

    assert not re.fullmatch(layered["AllowedPattern"], "")
    assert re.fullmatch(layered["AllowedPattern"], layered["Default"])
    assert re.fullmatch(bundled["AllowedPattern"], "")


def test_prune_leaves_out_the_runtimes_packages_stubs_tests_and_install_records(tmp_path: Path) -> None:
    files = [
        "boto3/__init__.py",
        "boto3-1.40.0.dist-info/METADATA",
        "botocore/data/x.json",
        "s3transfer/__init__.py",
        "jmespath/__init__.py",
        "dateutil/__init__.py",
        "python_dateutil-2.9.0.dist-info/METADATA",
        "six.py",
        "bin/normalizer",
        "jwt/__init__.py",
        "jwt/api_jwt.pyi",
        "jwt/py.typed",
        "certifi/tests/test_x.py",
        "certifi/cacert.pem",
        "charset_normalizer/md.py",
        "charset_normalizer/md.cpython-313-aarch64-linux-gnu.so",
        "pyjwt-2.10.0.dist-info/METADATA",
        "pyjwt-2.10.0.dist-info/RECORD",
        "pyjwt-2.10.0.dist-info/INSTALLER",
        "pyjwt-2.10.0.dist-info/licenses/LICENSE",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")

    prune(tmp_path)

    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "certifi/cacert.pem",
        "charset_normalizer/md.py",
        "jwt/__init__.py",
        "pyjwt-2.10.0.dist-info/METADATA",
        "pyjwt-2.10.0.dist-info/licenses/LICENSE",
    ]
