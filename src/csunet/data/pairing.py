"""Pair images with masks by file name, never by position in a listing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from csunet.data.errors import DataError
from csunet.data.io import is_image_file


@dataclass(frozen=True)
class Pairing:
    pairs: list[tuple[Path, Path]]
    images_without_mask: list[Path]
    masks_without_image: list[Path]

    def warning(self, where: str) -> str | None:
        """One message naming every unpaired file, or None when all files paired."""
        parts = []
        if self.images_without_mask:
            parts.append(
                f"{len(self.images_without_mask)} image(s) without a mask: "
                + ", ".join(p.name for p in self.images_without_mask)
            )
        if self.masks_without_image:
            parts.append(
                f"{len(self.masks_without_image)} mask(s) without an image: "
                + ", ".join(p.name for p in self.masks_without_image)
            )
        return f"{where}: skipped " + "; ".join(parts) if parts else None


def _by_stem(folder: Path, role: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: {role} folder does not exist")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not is_image_file(path):
            continue
        if path.stem in files:
            raise DataError(
                f"{folder}: two {role} files share the name {path.stem!r}: {files[path.stem].name}, {path.name}"
            )
        files[path.stem] = path
    return files


def pair_files(image_dir: Path, mask_dir: Path, mask_suffix: str = "") -> Pairing:
    """Match ``<stem>.<ext>`` in ``image_dir`` with ``<stem><mask_suffix>.<ext>`` in ``mask_dir``.

    Extensions may differ (an image TIFF with a PNG mask). Results are sorted by image name.
    """
    images = _by_stem(Path(image_dir), "image")
    masks = _by_stem(Path(mask_dir), "mask")
    pairs, lonely_images = [], []
    used: set[str] = set()
    for stem, image in images.items():
        mask = masks.get(stem + mask_suffix)
        if mask is None:
            lonely_images.append(image)
        else:
            pairs.append((image, mask))
            used.add(stem + mask_suffix)
    lonely_masks = [m for stem, m in masks.items() if stem not in used]
    return Pairing(pairs, lonely_images, lonely_masks)
