"""The template passes cfn-lint offline, and the Lambda dependencies match the package's."""

from __future__ import annotations

import tomllib
from pathlib import Path

from cfnlint.api import lint
from infra.local.template import TEMPLATE_PATH

ROOT = Path(__file__).resolve().parents[2]


def test_cfn_lint_reports_nothing_for_the_template() -> None:
    matches = lint(TEMPLATE_PATH.read_text(encoding="utf-8"), regions=["ap-south-1", "us-east-1"])

    assert [str(match) for match in matches] == []


def test_cfn_lint_catches_a_broken_template() -> None:
    # The check above is only worth something if lint finds a real mistake.
    broken = TEMPLATE_PATH.read_text(encoding="utf-8").replace("Timeout: 600", "Timeout: 9000", 1)

    assert any("9000" in str(match) for match in lint(broken, regions=["ap-south-1"]))


def _requirement_lines(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def test_function_requirements_are_the_package_dependencies_without_boto3() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # The Lambda runtime ships boto3; everything else the package needs travels in the artifact.
    expected = sorted(dep for dep in project["dependencies"] if not dep.startswith("boto3"))

    lines = _requirement_lines((ROOT / "functions" / "requirements.txt").read_text(encoding="utf-8"))

    assert lines == expected
    assert "pyotp>=2.9" in lines
