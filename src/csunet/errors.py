"""The one base class of expected errors: problems with what the user gave (data, descriptions, settings,
checkpoints, weights, results databases), as opposed to bugs.

The command line prints an expected error as one line, naming the file and the fix, and exits with code 2;
anything else keeps its traceback and asks for `csunet doctor` output in a bug report (exit code 1).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing


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


def check_choice(name: str, value, allowed, what: str | None = None) -> None:
    """Refuse a value that is not one of ``allowed``, naming the option and the choices."""
    if value not in allowed:
        raise SettingsError(f"unknown {what or name} {value!r}; choose from {', '.join(allowed)} (--{name})")


def check_field_types(owner: str, settings) -> None:
    """Refuse a setting whose value is not of its field's annotated type, by name, before any range check reads
    it (a list where a number belongs would otherwise end in a TypeError deep inside). Whole numbers given for text
    become text (YAML reads ``name: 2024`` as a number) and whole floats for counts become ints (``5.0``)."""
    hints = typing.get_type_hints(type(settings))
    for item in dataclasses.fields(settings):
        value, hint = getattr(settings, item.name), hints[item.name]
        if _matches(value, hint):
            continue
        if _admits(hint, str) and isinstance(value, int) and not isinstance(value, bool):
            setattr(settings, item.name, str(value))
        elif _admits(hint, int) and isinstance(value, float) and math.isfinite(value) and value.is_integer():
            setattr(settings, item.name, int(value))
        else:
            raise SettingsError(f"{owner}: {item.name} must be {_described(hint)}, not {value!r}")


def _admits(hint, kind: type) -> bool:
    return hint is kind or kind in typing.get_args(hint)


def _matches(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    return isinstance(value, origin or hint)


def _described(hint) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false", dict: "a mapping"}
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join("none" if arg is type(None) else _described(arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return f"a list of {_described(typing.get_args(hint)[0]).removeprefix('a ')}s"
    return names.get(typing.get_origin(hint) or hint, str(hint))
