"""What every command shares: the console, error handling (one line and exit code 2 for the user's mistakes, a
traceback and exit code 1 for our bugs), common options, and options generated from the configuration
dataclasses, so that a default and its help text live in one place: the dataclass."""

from __future__ import annotations

import ast
import dataclasses
import errno
import functools
import inspect
import json
import logging
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.markup import escape

from csunet.errors import CsunetError
from csunet.interchange import EXPORTS

NOT_A_TERMINAL_WIDTH = 1000
"""Logs, pipes and CI are not 80 columns wide: tables there take the width they need instead of cutting cells."""
console = Console(width=None if sys.stdout.isatty() else NOT_A_TERMINAL_WIDTH)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
ExportOption = Annotated[
    list[str],
    typer.Option(
        "--export",
        help=f"Also write the masks as {' / '.join(EXPORTS)} (ImageJ ROI set, GeoJSON polygons with class and "
        "measurements, OME-Zarr with the image); repeatable.",
    ),
]
DataRoot = Annotated[
    Path | None,
    typer.Option("--data-root", help="NASA benchmark folder (Super1..4, EBC1..3); default $CSUNET_DATA."),
]
ResumeOption = Annotated[
    Path | None, typer.Option("--resume", help="Continue the interrupted run in this folder.")
]


def say(text: str, label: str = "") -> None:
    """Plain text, never re-wrapped, highlighted or read as markup (paths, ``[0, 1]`` ranges and commands stay
    whole for copy and paste); ``label`` (``warning``, ``error``, ...) is coloured in front of it."""
    style = {"error": "bold red", "warning": "yellow"}.get(label, "yellow")
    prefix = f"[{style}]{label}:[/] " if label else ""
    console.print(prefix + escape(str(text)), highlight=False, soft_wrap=True)


def fail(exc: Exception | str) -> typing.NoReturn:
    say(str(exc), "error")
    raise typer.Exit(code=2)


def given(**settings) -> dict:
    """The settings the user gave (not None); the rest stay the model's own defaults."""
    return {k: v for k, v in settings.items() if v is not None}


def print_json(data) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


USER_OS_ERRORS = {
    errno.ENOSPC: " (the disk is full; free some space and run the same command again)",
    errno.EFBIG: " (a file size limit was reached: ulimit -f, or the file system's)",
    errno.EDQUOT: " (your disk quota is used up)",
    errno.EACCES: " (no permission: choose another place, or change the permissions)",
    errno.EPERM: " (not permitted: choose another place)",
    errno.EROFS: " (a read-only file system: choose another place)",
    errno.EISDIR: " (a folder where a file should be: name a file, or remove the folder)",
    errno.ENOTDIR: " (a file where a folder should be: name a folder, or remove the file)",
    errno.ENAMETOOLONG: " (the name is too long)",
}
"""Operating-system errors that are the user's situation, not our bug: one line naming the path, exit code 2."""


@contextmanager
def shown_log() -> Iterator[None]:
    """The library logs what it decides (``logging.getLogger("csunet....")``) and prints nothing; on the command
    line those INFO lines are part of the output, on standard output as plain lines, for the command's call."""
    logger = logging.getLogger("csunet")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def handle_errors(command: Callable) -> Callable:
    """The user's mistakes (:class:`csunet.errors.CsunetError`) become one line and exit code 2; anything else is
    a bug: its traceback is kept (exit code 1) with a request for `csunet doctor` output."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            with shown_log():
                return command(*args, **kwargs)
        except CsunetError as exc:
            fail(exc)
        except OSError as exc:
            if exc.errno not in USER_OS_ERRORS:
                raise
            where = exc.filename or "a file"
            fail(f"{where}: {exc.strerror or exc}{USER_OS_ERRORS[exc.errno]}")
        except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception:
            console.print(
                "[bold red]csunet met an unexpected error (a bug).[/] Please report it with the traceback below and "
                "the output of `csunet doctor`.",
                highlight=False,
                soft_wrap=True,
            )
            raise

    return run


class App(typer.Typer):
    """A Typer whose commands all go through :func:`handle_errors`."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)
        return lambda function: (register(handle_errors(function)), function)[1]

    def callback(self, *args, **kwargs):
        register = super().callback(*args, **kwargs)
        return lambda function: (register(handle_errors(function)), function)[1]


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under a dataclass's fields (``x: int = 1`` then ``\"\"\"what x is\"\"\"``)."""
    docs: dict[str, str] = {}
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    for statement, following in zip(body, body[1:]):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(following.value.value.replace("``", "").split())
    return docs


CONFIG_PREFIX = "config__"
_SIMPLE = (str, int, float, bool)


def _option_type(hint) -> type | None:
    """The scalar type of a field the command line can take (``int``, ``str | None``, ...), else None."""
    if hint in _SIMPLE:
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [m for m in typing.get_args(hint) if m is not type(None)]
        if len(members) == 1 and members[0] in _SIMPLE:
            return hint
    return None


def config_parameters(
    cls: type, skip: tuple[str, ...] = (), flags: dict[str, str] | None = None, notes: dict[str, str] | None = None
) -> list:
    """One Typer option per field of dataclass ``cls`` (name, type, default and help from the field; ``notes``
    appended to a field's help)."""
    hints, docs, flags, notes = typing.get_type_hints(cls), field_docs(cls), flags or {}, notes or {}
    parameters = []
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        hint = _option_type(hints[field.name])
        if hint is None:
            raise TypeError(f"{cls.__name__}.{field.name}: {hints[field.name]} has no command-line form; skip it")
        if field.name not in docs:
            raise TypeError(f"{cls.__name__}.{field.name} has no docstring to serve as its help")
        flag = flags.get(field.name, "--" + field.name.replace("_", "-"))
        if hint is bool and "/" not in flag:
            flag = f"{flag}/--no-{flag.removeprefix('--')}"
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = f"{docs[field.name]} {notes[field.name]}" if field.name in notes else docs[field.name]
        option = typer.Option(flag, help=help_text, show_default=True)
        parameters.append(
            inspect.Parameter(
                CONFIG_PREFIX + field.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                annotation=Annotated[hint, option],
            )
        )  # fmt: skip
    return parameters


def with_config_options(
    cls: type, skip: tuple[str, ...] = (), flags: dict[str, str] | None = None, notes: dict[str, str] | None = None
):
    """Decorator: the command gains an option for every field of ``cls`` (but ``skip``) and receives their values
    as a dict in ``config_values``; ``flags`` renames options (``{"window_size": "--window"}``), ``notes`` add to
    a field's help (each recipe's value of it)."""
    generated = config_parameters(cls, skip, flags, notes)
    return lambda function: with_generated_options(function, generated, CONFIG_PREFIX, "config_values", dict)


def with_generated_options(
    function: Callable, generated: list[inspect.Parameter], prefix: str, receiver: str, collect: Callable
) -> Callable:
    """``function`` as a command with the ``generated`` options (names starting with ``prefix``) beside its own;
    their values reach it as ``receiver=collect({name: value})``."""
    own = [p for p in inspect.signature(function, eval_str=True).parameters.values() if p.name != receiver]

    @functools.wraps(function)
    def command(**kwargs):
        values = {key.removeprefix(prefix): kwargs.pop(key) for key in list(kwargs) if key.startswith(prefix)}
        return function(**{receiver: collect(values)}, **kwargs)

    del command.__wrapped__  # Typer reads the signature below, not the function's own
    command.__signature__ = inspect.Signature(own + generated)
    command.__annotations__ = {p.name: p.annotation for p in own + generated}
    return command


MODEL_PREFIX = "model__"
MODEL_FLAGS = {"window_size": "--window"}
"""Model settings whose option is not the setting's name."""


def with_model_options(skip: tuple[str, ...] = ()):
    """Decorator: the command gains an option for every setting a registered model takes (but ``skip``), with the
    help the registry gives it (:data:`csunet.models.registry.SETTING_HELP`), and receives the ones given as a
    dict in ``model_settings``; the rest stay each model's own defaults."""
    import csunet.models  # noqa: F401  (registers the models)
    from csunet.models.registry import SETTING_HELP, setting_types

    generated = [
        inspect.Parameter(
            MODEL_PREFIX + name, inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[kind | None, typer.Option(
                MODEL_FLAGS.get(name, "--" + name.replace("_", "-")),
                help=f"{SETTING_HELP[name]}; default: the model's.")],
        )
        for name, kind in setting_types().items() if name not in skip
    ]  # fmt: skip

    return lambda function: with_generated_options(
        function, generated, MODEL_PREFIX, "model_settings", lambda chosen: given(**chosen)
    )
