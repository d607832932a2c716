"""Preparing a pretraining collection: prep clean, tile, augment, cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from csunet.cli.apps import prep_app
from csunet.cli.common import JsonFlag, fail, print_json, say

SourceFolder = Annotated[Path, typer.Argument(help="Images, flat or in class subfolders.")]
OutFolder = Annotated[Path, typer.Argument(help="Output folder (same class layout, PNG, manifest.csv).")]


def _crop(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        top, bottom, left, right = (int(v) for v in text.split(","))
    except ValueError:
        fail(f"--crop takes four pixel counts TOP,BOTTOM,LEFT,RIGHT, not {text!r}")
    return top, bottom, left, right


@prep_app.command("clean")
def prep_clean(
    source: SourceFolder,
    out: OutFolder,
    crop: Annotated[
        str | None, typer.Option(help="Manual crop TOP,BOTTOM,LEFT,RIGHT instead of detection.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove SEM information bands and boxed scale bars (reported per image)."""
    from csunet.pretrain.clean import clean_folder

    reports = clean_folder(source, out, _crop(crop))
    if as_json:
        print_json(reports)
        return
    for r in reports:
        found = [f"info band rows {r['info_band_rows']}"] if r["info_band_rows"] else []
        found += [f"scale-bar box {b}" for b in r["scale_bar_boxes"]]
        say(f"{r['source']}: {', '.join(found) or 'clean'}; removed {r['removed']}")


@prep_app.command("tile")
def prep_tile(
    source: SourceFolder,
    out: OutFolder,
    size: Annotated[int, typer.Option(help="Tile size in pixels.")] = 512,
) -> None:
    """Cut images into tiles: edge to edge when the image divides, evenly overlapping otherwise."""
    from csunet.pretrain.tiles import tile_folder

    rows = tile_folder(source, out, size)
    say(f"{len(rows)} tiles from {len({r['source'] for r in rows})} images in {out}")


@prep_app.command("augment")
def prep_augment(
    source: SourceFolder,
    out: OutFolder,
    copies: Annotated[int, typer.Option(help="Augmented copies per image (the original is kept too).")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write originals plus augmented copies (flips, rotations, brightness/contrast, noise)."""
    from csunet.pretrain.tiles import augment_folder

    rows = augment_folder(source, out, copies, seed)
    say(f"{len(rows)} images in {out}")


@prep_app.command("cluster")
def prep_cluster(
    source: SourceFolder,
    out: Annotated[Path, typer.Argument(help="Output ImageFolder layout (cluster_NN/ folders).")],
    k: Annotated[int | None, typer.Option(help="Number of clusters (default: sweep --k-min..--k-max).")] = None,
    k_min: Annotated[int, typer.Option(help="Smallest k of the sweep.")] = 2,
    k_max: Annotated[int, typer.Option(help="Largest k of the sweep.")] = 10,
    vgg_weights: Annotated[
        str, typer.Option(help="imagenet (torchvision download), none, or a file.")
    ] = "imagenet",
    copy: Annotated[bool, typer.Option(help="Copy images instead of linking them.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Give unlabelled images classes: VGG-16 features + K-means; contact sheets for checking."""
    from csunet.pretrain.cluster import cluster_folder

    result = cluster_folder(
        source, out, k, list(range(k_min, k_max + 1)), None if vgg_weights == "none" else vgg_weights, copy
    )
    if as_json:
        print_json(result)
        return
    scores = ", ".join(f"k={n}: {v:.3f}" for n, v in result["silhouette"].items())
    say(f"{result['images']} images -> {result['clusters']} clusters (silhouette {scores})")
    say(f"contact sheets: {out / '_contact_sheets'}")
