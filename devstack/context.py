"""The Lambda context object every locally invoked handler gets, shaped as AWS passes it.

The Python runtime (``awslambdaric``'s ``LambdaContext``) hands each invocation an object,
never a dict and never ``None``: attributes read from the function's configuration (note
``memory_limit_in_mb`` is the environment's string), the invocation's request id and ARN,
``identity`` (an object whose Cognito fields are ``None`` outside the mobile SDK),
``client_context`` (``None``), and ``get_remaining_time_in_millis()`` counting down to the
deadline. Fakes friendlier than that hide bugs (aws/chalice #1843).
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass

DEFAULT_ACCOUNT = "123456789012"


@dataclass(frozen=True, slots=True)
class CognitoIdentity:
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


class LambdaContext:
    """One invocation's context: see the module docstring."""

    def __init__(
        self,
        *,
        function_name: str,
        timeout_s: float = 60.0,
        memory_mb: int = 512,
        region: str = "us-east-1",
        account: str = DEFAULT_ACCOUNT,
        request_id: str | None = None,
    ) -> None:
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = str(memory_mb)
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = CognitoIdentity()
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = int(time.time() * 1000 + timeout_s * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, {self.aws_request_id})"
