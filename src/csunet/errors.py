"""The one base class of expected errors: problems with what the user gave (data, descriptions, settings,
checkpoints, weights, results databases), as opposed to bugs.

The command line prints an expected error as one line, naming the file and the fix, and exits with code 2;
anything else keeps its traceback and asks for `csunet doctor` output in a bug report (exit code 1).
"""

from __future__ import annotations

import math


class CsunetError(Exception):
    """Something the user can fix; the message says what and where."""


class SettingsError(CsunetError, ValueError):
    """An unknown setting, or a value out of its range; the message names it and what is allowed."""


class ResultsStoreError(CsunetError):
    """A results database that cannot be read or written, or databases that do not belong together."""


class MissingInputError(CsunetError, FileNotFoundError):
    """A file or folder the user named does not exist or is not what it should be."""


class OutputError(CsunetError, OSError):
    """A place to write results that cannot take them (a file where a folder should be, no permission)."""


class RunExistsError(CsunetError, FileExistsError):
    """A new run would write into a folder that holds another run."""


def check_range(
    owner: str, name: str, value, low=None, high=None, *, low_open=False, high_open=False, optional=False
) -> None:
    """Refuse a number outside its range, naming the setting and the range (``None`` passes when ``optional``).
    NaN and infinity are refused too: every comparison with NaN is false, so no range alone would catch it."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{owner}: {name} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise SettingsError(f"{owner}: {name} must be a finite number, not {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise SettingsError(f"{owner}: {name} must be in {span}, not {value}")
