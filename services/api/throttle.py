"""Failed authentications, counted per client address over a moving one-minute window.

Only failures are counted, and only failures are refused: a request whose token is good
is never limited, so one misbehaving client behind a shared address (an office NAT)
cannot lock out the others. Past the limit a failure answers 429 ``too_many_requests``
with ``Retry-After`` instead of 401, until the oldest failure in the window ages out.

Counts are kept in the process's memory (``limits``' MemoryStorage): each API process
counts on its own, and a restart forgets them.
"""

from __future__ import annotations

import math
import threading
import time

from fastapi import Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from services.api.problems import Problem

_NAMESPACE = "verkosto-auth-failures"
_lock = threading.Lock()


class FailureGuard:
    def __init__(self, per_minute: int) -> None:
        self.limit = RateLimitItemPerMinute(per_minute, namespace=_NAMESPACE)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    @staticmethod
    def address(request: Request) -> str:
        # uvicorn's --proxy-headers (with --forwarded-allow-ips) puts the real client here.
        return request.client.host if request.client else "unknown"

    def retry_after(self, address: str) -> int:
        reset_at = self.limiter.get_window_stats(self.limit, address).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def refusal(self, address: str) -> Problem:
        seconds = self.retry_after(address)
        return Problem(
            429,
            "too_many_requests",
            "Too many failed authentications",
            f"more than {self.limit.amount} failed authentications from this address in a minute;"
            f" try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )

    def failed(self, request: Request) -> None:
        """Counts one failure; raises 429 when it is over the limit (the caller raises 401 otherwise)."""
        address = self.address(request)
        if not self.limiter.hit(self.limit, address):
            raise self.refusal(address)


def guard(request: Request) -> FailureGuard:
    """The application's guard, made on first use from its settings."""
    state = request.app.state
    found = getattr(state, "auth_failure_guard", None)
    if found is None:
        with _lock:
            found = getattr(state, "auth_failure_guard", None)
            if found is None:
                found = FailureGuard(state.services.settings.auth_failures_per_minute)
                state.auth_failure_guard = found
    return found


def failed(request: Request) -> None:
    """For deps.get_principal: after a rejected token, before answering 401."""
    guard(request).failed(request)
