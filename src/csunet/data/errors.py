"""Errors and warnings raised on bad input data; every message names the file and the problem."""

from __future__ import annotations

from csunet.errors import CsunetError


class DataError(CsunetError, ValueError):
    """Input data that cannot be used as it is (the message says which file and why)."""


class DataWarning(UserWarning):
    """Input data that was skipped or adjusted (the message says which files)."""
