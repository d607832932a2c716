"""The `csunet` command. Each verb is a thin layer over one library function."""

from csunet.cli import data, prep, results, training  # noqa: F401  (each adds its verbs to the apps)
from csunet.cli.apps import app

__all__ = ["app"]
