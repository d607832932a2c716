"""The command's Typer apps; every module of this package adds its verbs to them."""

from __future__ import annotations

from csunet.cli.common import App

app = App(help="CS-UNet for micrographs: data, models, training, segmentation, measurement.", no_args_is_help=True)
data_app = App(help="Inspect datasets and write dataset descriptions.", no_args_is_help=True)
app.add_typer(data_app, name="data")
weights_app = App(help="List, fetch, import, inspect and check pretrained weights.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")
benchmark_app = App(help="Run experiment grids into a results database (and merge databases).")
app.add_typer(benchmark_app, name="benchmark")
prep_app = App(help="Prepare a pretraining collection: clean, tile, augment, cluster.", no_args_is_help=True)
app.add_typer(prep_app, name="prep")
models_app = App(help="Architectures and parameter counts; installed model bundles, and installing one.")
app.add_typer(models_app, name="models")
