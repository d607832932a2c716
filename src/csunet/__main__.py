"""`python -m csunet` = the `csunet` command."""

from csunet.cli import app

app(prog_name="csunet")
