"""`python -m broker_tokens.cli`: the same as the `broker-tokens` console script."""

import sys

from broker_tokens.cli.main import main

sys.exit(main())
