"""Typed deploy errors."""

from __future__ import annotations

from deeplocal.errors import DeeplocalError


class DeploySpecError(DeeplocalError):
    """An `LLMDeployment` spec is invalid or cannot be planned; nothing is applied.

    `problems` lists every problem as a sentence naming the field, for the status condition.
    """

    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_deployment"

    def __init__(self, problems: list[str]):
        self.problems = tuple(problems)
        super().__init__("; ".join(problems))
