"""Smoke tests of bench/: every benchmark runs at tiny sizes and returns its figures.

No figure is compared with a target here (performance lives in `make bench`); these check that each
benchmark measures what it says: real logins happened, reads were counted, the model adds up.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench import Figure, cost, fanout, reads, render, scale, staleness
from bench.aws import EmbeddedAws
from bench.coldstart import HANDLERS, directory_bytes, timed_import
from bench.coldstart import measure as measure_imports
from infra.local.template import apply_conditions, load_template, parameter_values

from broker_tokens.client import CACHE_SECONDS


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws(prefix="bench-test") as embedded:
        yield embedded


def names(figures: list[Figure]) -> list[str]:
    return [figure.name for figure in figures]


def test_fanout_logs_every_account_in_once_and_reports_the_bound(aws: EmbeddedAws) -> None:
    result = fanout.measure(aws, accounts=4, latency=0.01, sample_per_broker=1)
    brokers = [bench.broker for bench in fanout.available()]
    assert result.accounts == 4 and result.not_fresh == [] and result.rate_limited == 0
    assert sum(load.accounts for load in result.loads) == 4
    assert {load.broker for load in result.loads} <= set(brokers)
    # A login is at least a login call and a validation call.
    assert all(load.calls_per_login >= 2 for load in result.loads)
    assert result.lower_bound_seconds == max(load.bound(0.01) for load in result.loads)
    assert result.skip_run_logins == 0
    assert result.login_run_calls["secretsmanager.GetSecretValue"] >= 4
    assert result.sequential_seconds > 0 and result.cpu_seconds_per_account > 0
    assert "wall / lower bound" in names(result.figures())


def test_tradejini_bound_counts_pacing_per_ip_and_angel_pacing_per_account() -> None:
    tradejini = fanout.BrokerLoad("tradejini", accounts=25, calls_per_login=2, per_second=3, scope="ip")
    angel = fanout.BrokerLoad("angelone", accounts=25, calls_per_login=2, per_second=1, scope="account")
    assert tradejini.bound(0.25) == pytest.approx(8.5)
    assert angel.bound(0.25) == pytest.approx(0.5)


def test_reads_make_one_secret_read_per_token_version(aws: EmbeddedAws) -> None:
    result = reads.measure(aws, reads=50)
    assert len(result.api.latencies_ms) == 50 and len(result.client.latencies_ms) == 50
    assert result.api.get_secret_value == 1 and result.client.get_secret_value == 1
    assert result.auth_mode in ("iam", "api_key")
    assert any(figure.target for figure in result.figures())


def test_staleness_is_the_cache_interval_in_the_worst_case(aws: EmbeddedAws) -> None:
    result = staleness.measure(aws, step=1.0)
    assert result.client_seconds == pytest.approx(CACHE_SECONDS)
    assert result.api_seconds == pytest.approx(CACHE_SECONDS)


def test_cold_start_times_every_handler_against_boto3() -> None:
    result = measure_imports(rounds=1, build=False)
    assert set(result.imports) == {"boto3", *HANDLERS}
    assert all(seconds > 0 for seconds in result.imports.values())
    assert "refresher.app / boto3" in names(result.figures())
    assert "person_pages.app / boto3" in names(result.figures())
    # The whole-process figures (exit included) are given beside the targets, never as one.
    assert set(result.whole_process) == set(result.imports)
    rows = {figure.name: figure for figure in result.figures()}
    assert "whole process" in rows["refresher.app / boto3"].note
    assert rows["refresher.app / boto3"].value == result.ratio("refresher.app")
    # Each handler's costliest packages beyond boto3 are named, and boto3's own never are.
    for handler in HANDLERS:
        packages = [name for name, _ in result.costliest[handler]]
        assert "broker_tokens" in packages and "botocore" not in packages, handler


def test_an_import_is_timed_inside_its_process_without_interpreter_start_or_exit() -> None:
    # An exit that takes 0.3 s (as a teardown would) is in the process's wall time, not in the import's.
    slow_exit = "atexit; atexit.register(__import__('time').sleep, 0.3)"

    run = timed_import(slow_exit)
    nothing = timed_import(None)

    assert run.wall > 0.3 and run.inside < 0.1
    assert nothing.inside < nothing.wall / 10


def test_artifact_size_leaves_out_what_the_runtime_provides(tmp_path: Path) -> None:
    (tmp_path / "boto3").mkdir()
    (tmp_path / "boto3" / "big.py").write_bytes(b"x" * 1000)
    (tmp_path / "app.py").write_bytes(b"y" * 10)
    assert directory_bytes(tmp_path, skip=("boto3",)) == 10


def test_cost_grows_by_two_secrets_per_account_and_fixed_costs_do_not() -> None:
    model = cost.CostModel.from_template(cost.Measured.defaults())
    one, two = model.monthly(1), model.monthly(2)
    assert two.items["secrets"] - one.items["secrets"] == pytest.approx(2 * cost.PRICES["secret_month"])
    assert two.items["dashboard"] == one.items["dashboard"] == model.dashboards * 3.0
    assert one.total_with_egress > one.total + 40  # a NAT gateway's hours alone
    result = cost.measure()
    assert [bill.accounts for bill in result.bills] == list(cost.SIZES)


def test_the_lean_profile_drops_the_dashboard_and_the_key_and_keeps_the_alarms() -> None:
    lean = cost.CostModel.from_template(cost.Measured.defaults(), "lean")
    full = cost.CostModel.from_template(cost.Measured.defaults(), "full")
    assert (lean.dashboards, lean.kms_keys) == (0, 0) and (full.dashboards, full.kms_keys) == (1, 1)
    assert lean.alarms == full.alarms >= 5
    saved = full.monthly(1).total - lean.monthly(1).total
    assert saved == pytest.approx(cost.PRICES["cloudwatch_dashboard_month"] + cost.PRICES["kms_key_month"])
    rows = {figure.name: figure for figure in cost.measure().figures()}
    assert rows["lean profile, per account-month, 1 account(s)"].target == "<= 1.6 USD"
    assert rows["lean profile, per account-month, 10 account(s)"].target == "<= 1 USD"
    assert "dashboard" in rows["full profile, per account-month, 1 account(s)"].note


def deployed_alarms(parameters: dict[str, str]) -> int:
    """How many alarms CloudFormation creates for the template with these parameters."""
    template = load_template()
    resources = apply_conditions(template, parameter_values(template, parameters))["Resources"]
    return sum(1 for resource in resources.values() if resource["Type"] == "AWS::CloudWatch::Alarm")


def test_each_profile_pays_the_alarms_it_deploys() -> None:
    for profile, parameters in cost.PROFILES.items():
        model = cost.CostModel.from_template(cost.Measured.defaults(), profile)
        assert model.alarms == deployed_alarms(parameters), profile
        assert model.monthly(1).items["alarms"] == pytest.approx(model.alarms * cost.PRICES["cloudwatch_alarm_month"])


def test_an_alarm_only_some_deployments_have_is_billed_only_in_those() -> None:
    template = load_template()
    template["Resources"]["OnlyWithTelegramAlarm"] = {
        **copy.deepcopy(template["Resources"]["DeadLetterQueueAlarm"]),
        "Condition": "HasTelegram",
    }
    measured = cost.Measured.defaults()
    without = cost.CostModel.from_template(measured, "lean", template=template)
    with_telegram = cost.CostModel.from_template(measured, "lean", parameters=cost.TELEGRAM, template=template)
    assert (without.alarms, with_telegram.alarms) == (deployed_alarms({}), deployed_alarms(cost.TELEGRAM) + 1)


def test_telegram_on_adds_its_dead_letter_alarm_and_its_bot_token_secret() -> None:
    measured = cost.Measured.defaults()
    lean = cost.CostModel.from_template(measured, "lean")
    telegram = cost.CostModel.from_template(measured, "lean", parameters=cost.TELEGRAM)
    assert (lean.alarms, telegram.alarms) == (deployed_alarms({}), deployed_alarms(cost.TELEGRAM)) == (5, 6)
    added = telegram.monthly(1).total - lean.monthly(1).total
    assert telegram.monthly(1).items["Telegram bot secret"] == cost.PRICES["secret_month"]
    alarm, secret = cost.PRICES["cloudwatch_alarm_month"], cost.PRICES["secret_month"]
    assert alarm + secret < added < alarm + secret + 0.01  # the runs: a few alerts
    row = {figure.name: figure for figure in cost.measure().figures()}[
        "lean profile with Telegram, per account-month, 1 account(s)"
    ]
    assert row.value == pytest.approx(telegram.monthly(1).total) and row.ok is None
    assert "Telegram bot secret 0.40" in row.note


def test_scale_ceilings_follow_timeout_and_memory() -> None:
    small = scale.ceilings(timeout=600, memory_mb=256, cpu_per_login=0.03, chain_seconds=1.5, workers=16)
    big = scale.ceilings(timeout=600, memory_mb=1024, cpu_per_login=0.03, chain_seconds=1.5, workers=16)
    assert big["CPU"] == pytest.approx(4 * small["CPU"], rel=0.01)
    assert big["Tradejini pacing (one IP)"] == small["Tradejini pacing (one IP)"]


def test_render_marks_misses_and_keeps_notes() -> None:
    table = render([Figure("x", "y", 2.0, "s", target="<= 1 s", ok=False, note="why")])
    assert "| x | y | 2 s | <= 1 s | MISS |" in table and "- x, y: why" in table


def test_each_egress_mode_is_priced_with_its_sum() -> None:
    model = cost.CostModel.from_template(cost.Measured.defaults())
    bill = model.monthly(10)
    instance, gateway = sum(bill.egress["nat-instance"].values()), sum(bill.egress["nat-gateway"].values())
    assert bill.egress["none"] == {} and bill.total_with("none") == bill.total
    assert 5 < instance < 10 and 40 < gateway < 50  # the "about 7 against about 44", rechecked
    assert bill.egress["nat-instance"]["public IPv4"] == bill.egress["nat-gateway"]["public IPv4"] == 730 * 0.005
    rows = {figure.name: figure for figure in cost.measure().figures()}
    assert rows["EgressMode nat-instance"].value == pytest.approx(instance)
    assert "t4g.nano hours 3.36 + gp3 volume 0.73" in rows["EgressMode nat-instance"].note
