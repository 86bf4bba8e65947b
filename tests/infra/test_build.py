"""make build: Lambda-platform wheels plus the code, importable with nothing but the artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from infra.build import ROOT, BuildError, Target, build, functions_of, pinned
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
RUNTIME_PROVIDED = ("boto3", "botocore")

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
            assert Path(origin).is_relative_to(artifact), f"{module} came from {origin}, not the artifact"


def test_build_refuses_a_template_without_local_code(tmp_path: Path) -> None:
    template = load_template()
    template["Globals"]["Function"]["CodeUri"] = "s3://bucket/key.zip"

    with pytest.raises(BuildError, match="CodeUri must be a local directory"):
        functions_of(template, tmp_path, "python3.13")
