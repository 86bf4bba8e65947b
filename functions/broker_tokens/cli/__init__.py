"""The `broker-tokens` operator CLI: accounts, status, refresh, tokens, callers, doctor and the local stack.

Example:
    >>> from broker_tokens.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    broker-tokens 0.1.0
"""

from broker_tokens.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
