"""zapctl's exit codes and the one error type commands raise."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes scripts rely on (the design's command-line contract)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    UNAUTHORIZED = 4
    UNREACHABLE = 5
    TIMEOUT = 6
    INTERRUPTED = 130  # Ctrl+C (128 + SIGINT), as shells report it


class CliError(Exception):
    """A failure to report as one line on stderr with its exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
