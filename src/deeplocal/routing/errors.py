"""Typed routing errors (503s that say why nothing could serve the request)."""

from __future__ import annotations

from deeplocal.engine.errors import BackendUnavailable


class NoUpstreamAvailable(BackendUnavailable):
    """Every upstream that may serve this request is down, open-circuited or failed."""

    code = "no_upstream_available"


class NoAllowedUpstream(NoUpstreamAvailable):
    """The request's data class keeps it from every upstream that could have served it.

    Raised instead of sending the data anywhere it may not go; the message names the data class and
    the upstreams it was kept from.
    """

    code = "no_allowed_upstream"
