"""broker-tokens: daily broker session tokens, refreshed on a schedule and kept in Secrets Manager.

The package is the core that every Lambda function, the CLI and the embedded stack import. Handlers in
functions/refresher and functions/token_api stay thin and call into it.
"""

__version__ = "0.1.0"
