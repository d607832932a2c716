"""Cut a collection into fixed-size tiles, and make augmented copies; both recorded in the manifest."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np

from csunet.inference import tile_starts
from csunet.pretrain.collection import list_collection, output_path, read_image, write_png
from csunet.pretrain.manifest import write_manifest


def tile_grid(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """Tile corners: edge to edge without overlap when the image divides, else evenly spaced overlapping tiles
    that cover every pixel. An image smaller than a tile in some direction is one tile in that direction."""
    return [(top, left) for top in tile_starts(height, size, 0.0) for left in tile_starts(width, size, 0.0)]


def tile_folder(source: str | Path, out: str | Path, size: int = 512) -> list[dict]:
    out = Path(out)
    rows = []
    for path, class_name in list_collection(source):
        image = read_image(path)
        height, width = image.shape[:2]
        for top, left in tile_grid(height, width, size):
            tile = image[top : top + size, left : left + size]
            target = output_path(out, class_name, f"{path.stem}_y{top}_x{left}.png")
            write_png(target, tile)
            rows.append({"file": str(target.relative_to(out)), "source": str(path), "class": class_name,
                         "top": top, "left": left, "height": tile.shape[0], "width": tile.shape[1],
                         "step": "tile"})  # fmt: skip
    write_manifest(out, rows)
    return rows


def offline_augmentation() -> A.Compose:
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.8),
            A.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]
    )


def augment_folder(source: str | Path, out: str | Path, copies: int = 2, seed: int = 0) -> list[dict]:
    """Originals plus ``copies`` augmented versions of each image (the collection aggregates all of them)."""
    out = Path(out)
    transform = offline_augmentation()
    transform.set_random_seed(seed)
    rows = []
    for path, class_name in list_collection(source):
        image = read_image(path)
        height, width = image.shape[:2]
        for index in range(copies + 1):
            result = image if index == 0 else transform(image=image)["image"]
            target = output_path(out, class_name, f"{path.stem}_aug{index}.png")
            write_png(target, np.clip(result, 0, 1))
            rows.append({"file": str(target.relative_to(out)), "source": str(path), "class": class_name,
                         "top": 0, "left": 0, "height": result.shape[0], "width": result.shape[1],
                         "step": "original" if index == 0 else f"augment {index} (seed {seed})"})  # fmt: skip
    write_manifest(out, rows)
    return rows
