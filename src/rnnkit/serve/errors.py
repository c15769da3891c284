"""The server's answers other than success, as exceptions the app turns into JSON."""

from __future__ import annotations

__all__ = ["ApiError", "check_most", "check_text"]


class ApiError(Exception):
    """An answer other than success: HTTP status, one-line detail, extra headers."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def check_text(text: str, what: str, limit: int) -> None:
    """413 for a text of more than ``limit`` characters."""
    if len(text) > limit:
        raise ApiError(
            413,
            f"the {what} has {len(text):,} characters; this server takes at most "
            f"{limit:,} (rnnkit serve --max-text-chars)",
        )


def check_most(value: int, limit: int, what: str, flag: str) -> None:
    """422 for a value over a server limit."""
    if value > limit:
        raise ApiError(422, f"{what} must be <= {limit} on this server, got {value} ({flag})")
