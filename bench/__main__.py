"""`python -m bench` (what `make bench` runs): every benchmark on the embedded stack, one table.

Runs, in order: the fan-out (100 accounts, 250 ms per broker call), token reads (10 000), staleness,
cold start (imports and the built artifact), then prices a month (cost) and works out the scale on
paper from what was measured. Prints the machine, the table (Markdown, as docs/performance.md keeps
it) and its notes. The exit code is 0 even when a target is missed: a miss is a finding, not a crash.

Example:
    $ make bench
    $ .venv/bin/python -m bench --accounts 20 --reads 1000 --rounds 3 --no-build   # a quicker look
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import Figure, coldstart, cost, fanout, machine, quiet_logs, reads, render, scale, staleness
from bench.aws import EmbeddedAws


def main(argv: list[str] | None = None) -> int:
    """Parse the sizes, run the benchmarks, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100, help="fan-out accounts (default 100)")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds added to every broker call")
    parser.add_argument("--reads", type=int, default=10_000, help="token reads per path (default 10 000)")
    parser.add_argument("--rounds", type=int, default=21, help="fresh processes per import (default 21)")
    parser.add_argument("--no-build", action="store_true", help="skip building the Lambda artifact")
    args = parser.parse_args(argv)
    # The handlers' metrics go nowhere locally; their log lines are formatted, then dropped.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    started = time.perf_counter()
    print(f"broker-tokens benchmarks on the embedded stack: {machine()}", flush=True)
    figures: list[Figure] = []
    with quiet_logs(), EmbeddedAws() as aws:
        step(f"fan-out: {args.accounts} accounts, {args.latency * 1000:.0f} ms per broker call")
        spread = fanout.measure(aws, accounts=args.accounts, latency=args.latency)
        figures += spread.figures()
        step(f"token reads: {args.reads} through the token API handler and through get_token")
        read = reads.measure(aws, reads=args.reads)
        figures += read.figures()
        step("staleness: a refresh elsewhere, a warm reader")
        figures += staleness.measure(aws).figures()
    step(f"cold start: imports in {args.rounds} fresh processes each" + ("" if args.no_build else ", make build"))
    figures += coldstart.measure(rounds=args.rounds, build=not args.no_build).figures()
    figures += cost.measure(cost.Measured.from_results(spread, read)).figures()
    longest_chain = max(load.calls_per_login for load in spread.loads) * args.latency
    figures += scale.measure(cpu_per_login=spread.cpu_seconds_per_account, chain_seconds=longest_chain).figures()

    print()
    print(render(figures))
    missed = [f"{figure.benchmark}: {figure.name}" for figure in figures if figure.ok is False]
    print(f"\n{len(missed)} target(s) missed" + (": " + "; ".join(missed) if missed else ""))
    print(f"benchmarks took {time.perf_counter() - started:.0f} s")
    return 0


def step(what: str) -> None:
    """Say what runs now (to stderr, so the table on stdout stays clean)."""
    print(f"... {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
