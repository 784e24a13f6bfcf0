"""The one error base. The API maps every DeeplocalError to an OpenAI-shaped HTTP error at the edge."""

from __future__ import annotations


class DeeplocalError(Exception):
    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.headers = dict(headers or {})
