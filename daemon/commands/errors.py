"""The one exception a command raises for an expected slip.

A missing data folder, an unknown id, a path that is not there: the command raises
`CommandError` with one line saying what is wrong and what to do, and `daemon.cli`
prints it on stderr and exits with its status, without a traceback. Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

USAGE = 2  # the command line names something that is not there, or settings are invalid
NOT_FOUND = 1  # the row named (a job, an outbox row, a study) does not exist or cannot be acted on


class CommandError(Exception):
    """An expected error: `message` is printed as is; `status` is the exit status."""

    def __init__(self, message: str, status: int = USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
