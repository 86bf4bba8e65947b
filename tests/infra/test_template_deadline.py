"""The refresher's timeout, its run deadline, the retry budget and the lease TTL fit together."""

from __future__ import annotations

from broker_tokens.config import Settings
from tests.infra.cloudformation import Deployed


def test_the_deadline_retry_budget_and_lease_ttl_fit_the_refresher_timeout(default: Deployed) -> None:
    refresher = default.properties("RefresherFunction")
    settings = Settings.from_env(refresher["Environment"]["Variables"])
    timeout = float(refresher["Timeout"])
    deadline = timeout - settings.deadline_margin.total_seconds()  # what a full invocation may use

    # A whole retry budget, plus one HTTP call cut by it, ends before the run's deadline...
    assert settings.retry_budget.total_seconds() + settings.http_timeout < deadline
    # ...the deadline leaves time to record and report before Lambda ends the invocation...
    assert 0 < deadline < timeout
    # ...and a lease outlives any run, even one whose heartbeat stopped with a killed container.
    assert settings.lease_ttl.total_seconds() > timeout
