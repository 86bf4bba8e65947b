"""A stand-in for the Lambda context object, for running handlers in-process."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LocalLambdaContext:
    """The attributes Powertools reads from a Lambda context.

    Example:
        >>> LocalLambdaContext("refresher", timeout_seconds=600).get_remaining_time_in_millis() > 0
        True
    """

    function_name: str
    timeout_seconds: float = 600.0
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        """A local ARN-shaped name."""
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        """Where Lambda would log."""
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        """A fake stream name."""
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the configured timeout."""
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))
