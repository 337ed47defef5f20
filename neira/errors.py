"""One error root for the core. Each error has a stable `code`; api/ maps codes to HTTP statuses."""

from __future__ import annotations

from typing import Any


class NeiraError(Exception):
    """Root of every error the core raises on purpose.

    `code` is stable and public; `reason` is a sentence for people; `extra` holds the contract's
    additional fields (`capability`, `errors`, `violations`, `from`, `to`, ...).
    """

    code = "internal"

    def __init__(self, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The contract's error body."""
        return {"code": self.code, "reason": self.reason, **self.extra}


class InvalidRequest(NeiraError):
    code = "invalid_request"


class InvalidTemplate(NeiraError):
    code = "invalid_template"

    def __init__(self, errors: list[dict[str, str]], reason: str = "template is invalid") -> None:
        super().__init__(reason, errors=errors)
        self.errors = errors


class Unauthorized(NeiraError):
    code = "unauthorized"


class Forbidden(NeiraError):
    code = "forbidden"


class CapabilityDisabled(NeiraError):
    code = "capability_disabled"

    def __init__(self, capability: str, reason: str | None = None) -> None:
        super().__init__(reason or f"capability {capability} is disabled", capability=capability)


class CapabilityLocked(NeiraError):
    code = "capability_locked"

    def __init__(self, capability: str, reason: str | None = None) -> None:
        super().__init__(reason or f"capability {capability} is locked", capability=capability)


class SafeModeActive(NeiraError):
    code = "safe_mode"


class PolicyDenied(NeiraError):
    code = "policy_denied"

    def __init__(self, violations: list[dict[str, Any]], reason: str = "denied by policy") -> None:
        super().__init__(reason, violations=violations)


class NotFound(NeiraError):
    code = "not_found"


class InvalidTransition(NeiraError):
    code = "invalid_transition"

    def __init__(self, from_state: str, to_state: str, reason: str | None = None, **extra: Any) -> None:
        super().__init__(reason or f"cannot move from {from_state} to {to_state}", **{"from": from_state, "to": to_state}, **extra)


class Conflict(NeiraError):
    code = "conflict"


class PlanStale(NeiraError):
    code = "plan_stale"


class PayloadTooLarge(NeiraError):
    code = "payload_too_large"


class UnsupportedMediaType(NeiraError):
    """A JSON route got a body of another content type."""

    code = "unsupported_media_type"


class DataDirLocked(NeiraError):
    """Another server holds this SQLite data dir (start-up only: a message and exit code 3)."""

    code = "data_dir_locked"


class NotRunnable(NeiraError):
    """The cell or organ cannot run now: failed, disabled, no implementation, or its backend's gate closed."""

    code = "not_runnable"


class Busy(NeiraError):
    """Every run worker is busy and the queue is full; `retry_after` seconds is a fair wait."""

    code = "busy"

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Held(NeiraError):
    """A promotion waits for evidence or a human (contract §7); `waiting_for` says which."""

    code = "held"

    def __init__(self, reason: str, waiting_for: str, **extra: Any) -> None:
        super().__init__(reason, waiting_for=waiting_for, **extra)
