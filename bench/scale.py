"""Scale on paper: how many accounts one refresher run can log in within its Lambda timeout.

Not a measurement of its own: arithmetic on the template's timeout and memory and on what the fan-out
measured (calls per login, client CPU per account), with the rates the core paces logins at. Three
ceilings, the lowest wins:
  - pacing: a broker limited per source IP (Tradejini, 3 logins/s) gets one login per
    ``HEADROOM / rate`` seconds, and none in the last seconds of each 30 s TOTP window (a code must
    live long enough to arrive): that is the whole run's budget for that broker's accounts;
  - CPU: Lambda gives the refresher ``memory / 1769`` of a vCPU; each login costs the client CPU the
    fan-out measured (on this machine, not on Graviton: an estimate);
  - threads: ``max_workers`` logins at a time, each taking its chain of calls x the broker latency.
The usable time is the timeout less what the run keeps in reserve: one TOTP retry in the next window
and one hung request cut off by the HTTP timeout.

Example:
    >>> ceilings(timeout=600, memory_mb=256, cpu_per_login=0.03, chain_seconds=1.5, workers=16)["CPU"]
    2672
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.local.template import load_template

from bench import Figure
from broker_tokens.config import Settings
from broker_tokens.ratelimit import HEADROOM
from broker_tokens.totp_window import MIN_REMAINING_SECONDS, READY_MARGIN_SECONDS, STEP_SECONDS

NAME = "scale (paper)"
MB_PER_VCPU = 1769
TRADEJINI_RATE = 3.0  # logins per second per source IP (BROKERS.md)


def usable_seconds(timeout: float, http_timeout: float) -> float:
    """The run's time for logins: the timeout less a TOTP retry (one window) and one hung request.

    Example:
        >>> usable_seconds(600, 15)
        554
    """
    return timeout - STEP_SECONDS - 1 - http_timeout


def paced_logins_per_second(rate: float) -> float:
    """Logins per second the core allows a per-IP-paced TOTP broker, over many TOTP windows.

    Example:
        >>> round(paced_logins_per_second(3.0), 2)
        2.3
    """
    dead = (MIN_REMAINING_SECONDS + READY_MARGIN_SECONDS) / STEP_SECONDS
    return rate / HEADROOM * (1 - dead)


def ceilings(
    *,
    timeout: float,
    memory_mb: int,
    cpu_per_login: float,
    chain_seconds: float,
    workers: int,
    http_timeout: float = 15,
) -> dict[str, int]:
    """Accounts one run can log in, by what would stop it first."""
    usable = usable_seconds(timeout, http_timeout)
    cpu_share = memory_mb / MB_PER_VCPU
    return {
        "Tradejini pacing (one IP)": int(usable * paced_logins_per_second(TRADEJINI_RATE)),
        "CPU": int(usable * cpu_share / cpu_per_login),
        "threads": int(usable * workers / chain_seconds),
    }


@dataclass(frozen=True)
class ScaleResult:
    """The ceilings and what they rest on."""

    timeout: float
    memory_mb: int
    cpu_per_login: float
    chain_seconds: float
    workers: int
    limits: dict[str, int]

    def figures(self) -> list[Figure]:
        """The table rows (no targets: this is arithmetic, not a measurement)."""
        basis = (
            f"timeout {self.timeout:g} s, {self.memory_mb} MB ({self.memory_mb / MB_PER_VCPU:.3f} vCPU), "
            f"{self.cpu_per_login * 1000:.0f} ms CPU per login (measured here), longest chain "
            f"{self.chain_seconds:g} s, {self.workers} threads"
        )
        return [
            Figure(NAME, f"accounts per run, limit: {name}", count, "", note=basis if index == 0 else "")
            for index, (name, count) in enumerate(self.limits.items())
        ]


def measure(*, cpu_per_login: float, chain_seconds: float) -> ScaleResult:
    """The ceilings for the template's refresher, from the fan-out's CPU per login and longest chain."""
    template = load_template()
    shared = template.get("Globals", {}).get("Function", {})
    refresher = {**shared, **template["Resources"]["RefresherFunction"]["Properties"]}
    timeout, memory = float(refresher["Timeout"]), int(refresher.get("MemorySize", 128))
    settings = Settings()
    limits = ceilings(
        timeout=timeout,
        memory_mb=memory,
        cpu_per_login=cpu_per_login,
        chain_seconds=chain_seconds,
        workers=settings.max_workers,
        http_timeout=settings.http_timeout,
    )
    return ScaleResult(timeout, memory, cpu_per_login, chain_seconds, settings.max_workers, limits)
