"""Cost: a small monthly model of the deployed template, at AWS list prices, from what the other benchmarks measured.

What is counted comes from template.yaml (read with ``infra.local.template.load_template``) as a profile
deploys it (``apply_conditions``: a resource whose condition is false is not billed): the alarms,
dashboards, KMS keys, schedules (three refreshes and the end-of-day logout, when on), the refresher's
memory, the Telegram notifier, and the optional static egress: each ``EgressMode`` is priced on its
own (``nat-instance``: one t4g.nano, its 8 GB gp3 root volume and the Elastic IP's public IPv4 charge;
``nat-gateway``: the gateway's hours and data and the same IPv4 charge). How much of each is used comes from the
benchmarks: the AWS calls per account of a login run and of an all-fresh run (fan-out), the run's
wall time and CPU per account, and the readers' cache rates (token reads: one GetSecretValue per
token version, a DescribeSecret every ``CACHE_SECONDS`` while reading). The assumptions about use
are in ``USAGE``; prices in ``PRICES``.

Two profiles, as template.yaml's parameters make them (``PROFILES``): ``lean`` (the defaults: the
AWS-managed Secrets Manager key, no dashboard) and ``full`` (``SecretsKeyMode=customer-managed``,
``DashboardMode=basic``: the stack's own KMS key and the dashboard). The same five alarms are in both.
The lean profile with Telegram on (``TELEGRAM``) is priced too, for comparison: it adds the notifier's
dead-letter alarm (its refused posts have a queue of their own, so they never hide a scheduled run that
never started), the bot token's secret and a notifier run per alert.

Targets, without static egress: the lean profile <= 1.6 USD a month for one account and <= 1 USD per
account-month from ten accounts on; the full profile <= 1 USD per account-month at 100. Fixed costs
(the dashboard, the key, the alarms) do not shrink with fewer accounts, honestly reported.

Example:
    >>> model = CostModel.from_template(Measured.defaults())
    >>> round(model.monthly(100).total / 100, 2) <= 1.0
    True
    >>> CostModel.from_template(Measured.defaults(), "lean").monthly(1).total <= 1.6
    True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.local.template import apply_conditions, load_template, parameter_values

from bench import Figure
from broker_tokens.client import CACHE_SECONDS

NAME = "cost"
TARGET_PER_ACCOUNT = 1.0
TARGET_LEAN_ONE_ACCOUNT = 1.6
SIZES = (1, 10, 100)
# The template's parameters of each profile (lean: the defaults).
PROFILES: dict[str, dict[str, str]] = {
    "lean": {},
    "full": {"SecretsKeyMode": "customer-managed", "DashboardMode": "basic"},
}
# Telegram on (any chat id): the lean profile's variant that also posts every alert to a chat.
TELEGRAM = {"TelegramChatId": "-1001234567890"}
NOTIFIER = "NotifierFunction"

# AWS list prices, ap-south-1 (Mumbai), USD, no free tier. From AWS's public pricing pages as of the date
# below (read by a person, not fetched by this benchmark): recheck them before relying on the result.
PRICES: dict[str, Any] = {
    "as_of": "2025-06 (list prices; recheck at https://calculator.aws; t4g.nano and gp3 added 2026-12)",
    "region": "ap-south-1",
    "secret_month": 0.40,
    "secrets_api_per_10k": 0.05,
    "kms_key_month": 1.00,
    "kms_requests_per_10k": 0.03,
    "lambda_arm_gb_second": 0.0000133334,
    "lambda_requests_per_million": 0.20,
    "dynamodb_write_per_million": 0.7125,
    "dynamodb_read_per_million": 0.1425,
    "sns_publish_per_million": 0.50,
    "scheduler_per_million": 1.00,
    "cloudwatch_alarm_month": 0.10,
    "cloudwatch_dashboard_month": 3.00,
    "cloudwatch_metric_month": 0.30,
    "cloudwatch_logs_ingest_gb": 0.50,
    "nat_hour": 0.056,
    "nat_gb": 0.056,
    "public_ipv4_hour": 0.005,  # every public IPv4 address, an Elastic IP in use included (since 2024-02)
    "t4g_nano_hour": 0.0046,  # Linux on-demand
    "ebs_gp3_gb_month": 0.0912,
}
EGRESS_MODES = ("none", "nat-instance", "nat-gateway")

# How the product is used in a month (assumptions, not measurements).
USAGE: dict[str, float] = {
    "trading_days": 22,
    "hours_per_month": 730,
    "market_seconds_per_day": 6.25 * 3600,  # 09:15-15:30 IST: an app reads its token all session long
    "reader_processes_per_account": 1,  # each process keeps its own cache
    "logins_per_day": 1,  # one token version a day per account
    "metric_hours_per_day": 2,  # the runs at 07:30, 08:00 and 08:30 fall in two clock hours
    "refresher_metrics_fixed": 5,  # RefreshSucceeded, RefreshFailed, AccountsNotFresh, LoginLatencyMs, TokenAge
    "refresher_metrics_per_broker": 2,  # per-broker success and failure, for the dashboard
    "brokers_in_use_max": 4,
    "log_bytes_per_account_run": 2_000,
    "egress_bytes_per_login": 100_000,  # TLS handshakes and answers through the NAT, generous
    "nat_instance_volume_gb": 8,  # the Amazon Linux 2023 image's root volume
    "lambda_init_seconds": 1.0,
    "lambda_mb_per_vcpu": 1769,  # Lambda gives one vCPU at 1,769 MB, in proportion below
    "alerts_per_month": 60,  # with Telegram: each alert is one notifier run (generous: a few a day)
    "notifier_seconds": 1.0,  # one sendMessage to Telegram, the bot token read included
    "notifier_memory_mb": 128,
}


@dataclass(frozen=True)
class Measured:
    """What the other benchmarks measured that the model needs (per account unless named otherwise)."""

    accounts: int  # size of the measured fan-out
    login_run_seconds: float
    all_fresh_run_seconds: float
    cpu_seconds_per_account: float
    login_run_calls: dict[str, float]  # per account, by "service.Operation"
    all_fresh_run_calls: dict[str, float]  # per account
    get_secret_value_per_version: float = 1.0
    describe_interval_seconds: float = CACHE_SECONDS
    api_dynamodb_reads_per_request: float = 2.0
    api_request_seconds: float = 0.010

    @classmethod
    def defaults(cls) -> Measured:
        """Typical figures from a run of the other benchmarks, for the model on its own (docs, tests).

        Example:
            >>> Measured.defaults().login_run_calls["secretsmanager.GetSecretValue"]
            3.0
        """
        login = {
            "secretsmanager.GetSecretValue": 3.0,
            "secretsmanager.PutSecretValue": 1.0,
            "secretsmanager.CreateSecret": 1.0,
            "dynamodb.GetItem": 3.0,
            "dynamodb.PutItem": 2.0,
            "dynamodb.DeleteItem": 1.0,
        }
        fresh = {"secretsmanager.GetSecretValue": 2.0, "dynamodb.GetItem": 1.0}
        return cls(100, 10.5, 1.5, 0.03, login, fresh)

    @classmethod
    def from_results(cls, fanout: Any, reads: Any | None) -> Measured:
        """From a FanoutResult and (optionally) a ReadsResult."""
        per_account = {
            name: {key: count / fanout.accounts for key, count in calls.items()}
            for name, calls in (("login", fanout.login_run_calls), ("fresh", fanout.skip_run_calls))
        }
        extra: dict[str, float] = {}
        if reads is not None:
            api = reads.api
            extra["get_secret_value_per_version"] = float(reads.client.get_secret_value)
            extra["api_dynamodb_reads_per_request"] = api.per_read("dynamodb")
            extra["api_request_seconds"] = api.p50 / 1000
        return cls(
            fanout.accounts,
            fanout.wall_seconds,
            fanout.skip_wall_seconds,
            fanout.cpu_seconds_per_account,
            per_account["login"],
            per_account["fresh"],
            **extra,
        )


def _calls(calls: dict[str, float], service: str, operations: tuple[str, ...] | None = None) -> float:
    return sum(
        count
        for key, count in calls.items()
        if key.startswith(service + ".") and (operations is None or key.split(".", 1)[1] in operations)
    )


DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
SECRET_WRITES = ("PutSecretValue", "CreateSecret")


@dataclass(frozen=True)
class Bill:
    """One month's cost at one account count: items in USD, without and with static egress."""

    accounts: int
    items: dict[str, float]
    egress: dict[str, dict[str, float]] = field(default_factory=dict)  # by EgressMode

    @property
    def total(self) -> float:
        """USD a month without static egress."""
        return sum(self.items.values())

    def total_with(self, mode: str) -> float:
        """USD a month with an EgressMode (``none``, ``nat-instance``, ``nat-gateway``)."""
        return self.total + sum(self.egress.get(mode, {}).values())

    @property
    def total_with_egress(self) -> float:
        """USD a month with the costlier static egress, the NAT gateway."""
        return self.total_with("nat-gateway")

    def breakdown(self) -> str:
        """The largest items, for the table's notes."""
        items = sorted(self.items.items(), key=lambda item: -item[1])
        shown = ", ".join(f"{name} {value:.2f}" for name, value in items if value >= 0.005)
        rest = sum(value for _, value in items if value < 0.005)
        return f"{shown}, rest {rest:.3f}"


@dataclass(frozen=True)
class CostModel:
    """The template's billable resources and the measured rates; ``monthly(n)`` prices a month of n accounts."""

    measured: Measured
    alarms: int
    dashboards: int
    kms_keys: int
    schedules: int  # refresh runs a day
    refresher_memory_mb: int
    nat_gateways: int
    elastic_ips: int
    nat_instances: int = 0
    nat_instance_alarms: int = 0
    logout_schedules: int = 0
    telegram: bool = False  # the notifier is deployed (TelegramChatId set)

    @classmethod
    def from_template(
        cls,
        measured: Measured,
        profile: str = "full",
        *,
        parameters: Mapping[str, str] | None = None,
        template: Mapping[str, Any] | None = None,
    ) -> CostModel:
        """Count the billable resources template.yaml deploys for a profile (``PROFILES``, then
        ``parameters`` over it): what a condition leaves out is not billed. The egress ones, conditional
        on EgressMode, are priced per mode apart, so the profile is read with ``EgressMode=none``.

        Example:
            >>> CostModel.from_template(Measured.defaults(), "lean", parameters=TELEGRAM).alarms
            5
        """
        template = template or load_template()
        resources = template["Resources"]
        types = Counter(resource["Type"] for resource in resources.values())
        overrides = {**PROFILES[profile], **(parameters or {}), "EgressMode": "none"}
        deployed = apply_conditions(template, parameter_values(template, overrides))
        chosen = Counter(resource["Type"] for resource in deployed["Resources"].values())
        shared = deployed.get("Globals", {}).get("Function", {})
        refresher = {**shared, **deployed["Resources"]["RefresherFunction"]["Properties"]}
        # A schedule turned off (EndOfDayLogout=off) exists but never runs: it costs nothing.
        events = [
            event
            for event in refresher.get("Events", {}).values()
            if event["Type"] == "ScheduleV2" and event["Properties"].get("State", "ENABLED") == "ENABLED"
        ]
        logouts = sum(1 for event in events if "logout" in str(event["Properties"].get("Input", "")))
        # The NAT instance's recovery alarms exist only in that mode: they are priced with it.
        nat_alarms = sum(
            1
            for resource in resources.values()
            if resource["Type"] == "AWS::CloudWatch::Alarm" and resource.get("Condition") == "UseNatInstance"
        )
        return cls(
            measured,
            alarms=chosen["AWS::CloudWatch::Alarm"],
            dashboards=chosen["AWS::CloudWatch::Dashboard"],
            kms_keys=chosen["AWS::KMS::Key"],
            schedules=len(events) - logouts,
            refresher_memory_mb=int(refresher.get("MemorySize", 128)),
            nat_gateways=types["AWS::EC2::NatGateway"],
            elastic_ips=types["AWS::EC2::EIP"],
            nat_instances=types["AWS::EC2::Instance"],
            nat_instance_alarms=nat_alarms,
            logout_schedules=logouts,
            telegram=NOTIFIER in deployed["Resources"],
        )

    def run_seconds(self, accounts: int, *, logins: bool) -> float:
        """One run's billed duration: the measured wall time scaled to ``accounts``, or the CPU it needs at
        the refresher's memory (Lambda gives 1,769 MB one vCPU), whichever is longer, plus init.
        """
        m = self.measured
        wall = (m.login_run_seconds if logins else m.all_fresh_run_seconds) * accounts / m.accounts
        calls = m.login_run_calls if logins else m.all_fresh_run_calls
        share = sum(calls.values()) / max(1.0, sum(m.login_run_calls.values()))
        cpu_share = self.refresher_memory_mb / USAGE["lambda_mb_per_vcpu"]
        cpu = accounts * m.cpu_seconds_per_account * share / cpu_share
        return max(wall, cpu) + USAGE["lambda_init_seconds"]

    def monthly(self, accounts: int) -> Bill:
        """A month of ``accounts`` accounts at list prices (no free tier)."""
        p, u, m = PRICES, USAGE, self.measured
        days = u["trading_days"]
        runs = (self.schedules + self.logout_schedules) * days
        # Per account and day; a logout run reads and writes like a login run (one broker call, one write).
        refresher_calls = {key: count * (1 + self.logout_schedules) for key, count in m.login_run_calls.items()}
        for key, count in m.all_fresh_run_calls.items():
            refresher_calls[key] = refresher_calls.get(key, 0.0) + count * max(0, self.schedules - 1)
        secrets_calls = _calls(refresher_calls, "secretsmanager") * days
        reader_checks = u["market_seconds_per_day"] / m.describe_interval_seconds
        reader_reads = m.get_secret_value_per_version * u["logins_per_day"]
        secrets_calls += (reader_checks + reader_reads) * u["reader_processes_per_account"] * days
        # Secrets Manager asks KMS to decrypt for each value read and for a data key for each value written.
        kms_requests = days * (
            _calls(refresher_calls, "secretsmanager", ("GetSecretValue", *SECRET_WRITES))
            + reader_reads * u["reader_processes_per_account"]
        )
        dynamodb_writes = _calls(refresher_calls, "dynamodb", DYNAMODB_WRITES) * days
        dynamodb_reads = (_calls(refresher_calls, "dynamodb") * days) - dynamodb_writes
        gb_seconds = (
            self.refresher_memory_mb
            / 1024
            * days
            * (
                (1 + self.logout_schedules) * self.run_seconds(accounts, logins=True)
                + (self.schedules - 1) * self.run_seconds(accounts, logins=False)
            )
        )
        brokers = min(accounts, int(u["brokers_in_use_max"]))
        metrics = u["refresher_metrics_fixed"] + u["refresher_metrics_per_broker"] * brokers
        metric_share = u["metric_hours_per_day"] * days / u["hours_per_month"]
        log_gb = accounts * runs * u["log_bytes_per_account_run"] / 1e9
        items = {
            "secrets": 2 * accounts * p["secret_month"],
            "secrets API": accounts * secrets_calls / 10_000 * p["secrets_api_per_10k"],
            "KMS key": self.kms_keys * p["kms_key_month"],
            "KMS requests": accounts * kms_requests / 10_000 * p["kms_requests_per_10k"],
            "Lambda": gb_seconds * p["lambda_arm_gb_second"] + runs * p["lambda_requests_per_million"] / 1e6,
            "DynamoDB": accounts
            * (dynamodb_writes * p["dynamodb_write_per_million"] + dynamodb_reads * p["dynamodb_read_per_million"])
            / 1e6,
            "scheduler": runs * p["scheduler_per_million"] / 1e6,
            "alarms": self.alarms * p["cloudwatch_alarm_month"],
            "dashboard": self.dashboards * p["cloudwatch_dashboard_month"],
            "metrics": metrics * metric_share * p["cloudwatch_metric_month"],
            "logs": log_gb * p["cloudwatch_logs_ingest_gb"],
            "SNS": 0.0,  # alerts only when an account fails: a handful of publishes
        }
        if self.telegram:  # the bot token's secret (stored by `alerts telegram set`) and a run per alert
            notifier_gb_seconds = u["alerts_per_month"] * u["notifier_seconds"] * u["notifier_memory_mb"] / 1024
            items["Telegram bot secret"] = p["secret_month"]
            items["notifier"] = notifier_gb_seconds * p["lambda_arm_gb_second"] + u["alerts_per_month"] * (
                p["lambda_requests_per_million"] / 1e6 + p["secrets_api_per_10k"] / 10_000
            )
        return Bill(accounts, items, self.egress(accounts))

    def egress(self, accounts: int) -> dict[str, dict[str, float]]:
        """Each EgressMode's monthly items: the NAT (instance or gateway) and the Elastic IP's IPv4 charge.

        Example:
            >>> modes = CostModel.from_template(Measured.defaults()).egress(1)
            >>> round(sum(modes["nat-instance"].values()), 2), round(sum(modes["nat-gateway"].values()), 2)
            (7.94, 44.53)
        """
        p, u = PRICES, USAGE
        hours = u["hours_per_month"]
        crossings = 1 + self.logout_schedules  # a login and a logout a day go out through the NAT
        data_gb = accounts * u["trading_days"] * crossings * u["egress_bytes_per_login"] / 1e9
        address = {"public IPv4": self.elastic_ips * hours * p["public_ipv4_hour"]}
        return {
            "none": {},
            "nat-instance": {
                "t4g.nano hours": self.nat_instances * hours * p["t4g_nano_hour"],
                "gp3 volume": self.nat_instances * u["nat_instance_volume_gb"] * p["ebs_gp3_gb_month"],
                "recovery alarms": self.nat_instance_alarms * p["cloudwatch_alarm_month"],
                **address,
            },
            "nat-gateway": {
                "NAT hours": self.nat_gateways * hours * p["nat_hour"],
                "NAT data": data_gb * p["nat_gb"],
                **address,
            },
        }

    def per_million_api_reads(self) -> float:
        """USD per million token API reads: invocations, their duration, and the caller lookups in DynamoDB."""
        p, m = PRICES, self.measured
        lambda_cost = p["lambda_requests_per_million"] + 1e6 * m.api_request_seconds * 0.25 * p["lambda_arm_gb_second"]
        return lambda_cost + m.api_dynamodb_reads_per_request * p["dynamodb_read_per_million"]


@dataclass(frozen=True)
class CostResult:
    """Bills at each size per profile (``bills``: the lean ones), and the marginal cost of one more account."""

    profiles: dict[str, list[Bill]]
    marginal: float
    api_per_million: float
    lean_with_telegram: Bill | None = None  # one account, TelegramChatId set

    @property
    def bills(self) -> list[Bill]:
        """The lean profile's bills (the default deployment)."""
        return self.profiles["lean"]

    def figures(self) -> list[Figure]:
        """The table rows."""
        rows = [bill_figure(profile, bill) for profile, bills in self.profiles.items() for bill in bills]
        if self.lean_with_telegram is not None:
            rows.append(bill_figure("lean", self.lean_with_telegram, variant="with Telegram"))
        rows.append(
            Figure(
                NAME,
                "each added account",
                self.marginal,
                "USD/month",
                target=f"<= {TARGET_PER_ACCOUNT:g} USD",
                ok=self.marginal <= TARGET_PER_ACCOUNT,
                note=f"prices {PRICES['region']} {PRICES['as_of']}; token API reads cost "
                f"{self.api_per_million:.2f} USD per million on top",
            )
        )
        rows += egress_figures(self.bills[-1])
        return rows


def target_of(profile: str, accounts: int) -> float | None:
    """The per-account-month target of a profile at a size (None: a figure without a target).

    Example:
        >>> target_of("lean", 1), target_of("lean", 10), target_of("full", 1), target_of("full", 100)
        (1.6, 1.0, None, 1.0)
    """
    if profile == "lean":
        return TARGET_LEAN_ONE_ACCOUNT if accounts == 1 else TARGET_PER_ACCOUNT
    return TARGET_PER_ACCOUNT if accounts >= 100 else None


def bill_figure(profile: str, bill: Bill, variant: str = "") -> Figure:
    """One row: a profile's cost per account-month at one size, with its total and largest items.

    A ``variant`` (a parameter set over the profile, such as Telegram on) is shown for comparison, without
    a target: the targets are the profiles' own; what the variant adds is among the note's items.

    Example:
        >>> bill_figure("lean", measure().lean_with_telegram, variant="with Telegram").name
        'lean profile with Telegram, per account-month, 1 account(s)'
    """
    per = bill.total / bill.accounts
    target = None if variant else target_of(profile, bill.accounts)
    note = (
        f"total {bill.total:.2f} USD: {bill.breakdown()}; with EgressMode nat-instance "
        f"{bill.total_with('nat-instance'):.2f} USD, nat-gateway {bill.total_with('nat-gateway'):.2f} USD"
    )
    return Figure(
        NAME,
        f"{profile} profile{' ' + variant if variant else ''}, per account-month, {bill.accounts} account(s)",
        per,
        "USD",
        target=f"<= {target:g} USD" if target is not None else "",
        ok=per <= target if target is not None else None,
        note=note,
    )


def egress_figures(bill: Bill) -> list[Figure]:
    """One row per EgressMode: what static egress adds a month, with the sum that makes it.

    Example:
        >>> [f.name for f in egress_figures(measure().bills[0])]
        ['EgressMode none', 'EgressMode nat-instance', 'EgressMode nat-gateway']
    """
    rows = []
    for mode in EGRESS_MODES:
        items = bill.egress.get(mode, {})
        added = sum(items.values())
        sums = " + ".join(f"{name} {value:.2f}" for name, value in items.items()) or "no VPC, no NAT"
        rows.append(
            Figure(
                NAME,
                f"EgressMode {mode}",
                added,
                "USD/month",
                note=f"{sums} = {added:.2f} USD a month at {bill.accounts} accounts "
                f"({bill.total_with(mode):.2f} USD in all); {egress_basis(mode)}",
            )
        )
    return rows


def egress_basis(mode: str) -> str:
    """How a mode's items are priced (the hours and rates behind the sum).

    Example:
        >>> egress_basis("none")
        'Lambda leaves from changing AWS addresses: no static IP to register'
    """
    p, hours = PRICES, USAGE["hours_per_month"]
    ipv4 = f"public IPv4 {hours:g} h x {p['public_ipv4_hour']}"
    if mode == "nat-instance":
        volume = USAGE["nat_instance_volume_gb"]
        instance = f"t4g.nano {hours:g} h x {p['t4g_nano_hour']}, gp3 {volume:g} GB x {p['ebs_gp3_gb_month']}"
        return f"{instance}, 2 alarms x {p['cloudwatch_alarm_month']}, {ipv4}"
    if mode == "nat-gateway":
        return f"NAT gateway {hours:g} h x {p['nat_hour']} + {p['nat_gb']} per GB processed, {ipv4}"
    return "Lambda leaves from changing AWS addresses: no static IP to register"


def measure(measured: Measured | None = None, sizes: tuple[int, ...] = SIZES) -> CostResult:
    """Price a month at each size, for each profile."""
    models = {profile: CostModel.from_template(measured or Measured.defaults(), profile) for profile in PROFILES}
    profiles = {profile: [model.monthly(size) for size in sizes] for profile, model in models.items()}
    lean = models["lean"]
    marginal = lean.monthly(101).total - lean.monthly(100).total
    telegram = CostModel.from_template(measured or Measured.defaults(), "lean", parameters=TELEGRAM)
    return CostResult(profiles, marginal, lean.per_million_api_reads(), telegram.monthly(1))


if __name__ == "__main__":  # `python -m bench.cost`: the cost section alone, on the default measurements
    from bench import render

    print(render(measure().figures()))
