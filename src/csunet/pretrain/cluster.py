"""Give an unlabelled collection classes: VGG-16 feature maps pooled to vectors, clustered with K-means.

``k`` fixed, or a sweep over ``k_values`` keeping the best silhouette score. Writes an ImageFolder layout
(``cluster_00/`` ...; links by default, copies on request), ``clusters.csv`` and one contact-sheet PNG per cluster
in ``_contact_sheets/`` (underscore folders are not classes)
so a person can check what the clusters mean.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from csunet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from csunet.errors import SettingsError
from csunet.pretrain.collection import list_collection, read_image
from csunet.render import to_rgb8
from csunet.utils import atomic_write_bytes, atomic_write_text

FEATURE_SIZE = 224


def vgg16_features(weights: str | None = "imagenet") -> torch.nn.Module:
    """torchvision's VGG-16 convolutional part; ``weights``: ``imagenet`` (torchvision's download), None (random,
    for tests), or a file with a VGG-16 state dict."""
    from torchvision.models import VGG16_Weights, vgg16

    if weights == "imagenet":
        try:
            model = vgg16(weights=VGG16_Weights.IMAGENET1K_V1)
        except OSError as exc:
            raise RuntimeError(
                f"could not fetch torchvision's ImageNet VGG-16 weights ({exc}); pass a VGG-16 state-dict file "
                "(--vgg-weights FILE) or --vgg-weights none (random features: clusters by low-level statistics only)"
            ) from exc
    else:
        model = vgg16(weights=None)
        if weights:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.features.eval()


@torch.no_grad()
def embed(paths: list[Path], features: torch.nn.Module, batch_size: int = 16) -> np.ndarray:
    """One vector per image: VGG-16 feature maps, averaged and max-pooled over space, concatenated."""
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    vectors = []
    for first in range(0, len(paths), batch_size):
        batch = []
        for path in paths[first : first + batch_size]:
            image = read_image(path)
            image = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
            tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
            tensor = F.interpolate(
                tensor[None], size=(FEATURE_SIZE, FEATURE_SIZE), mode="bilinear", antialias=True
            )[0]
            batch.append((tensor - mean) / std)
        maps = features(torch.stack(batch))
        vectors.append(torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1))
    return torch.cat(vectors).numpy()


def choose_clusters(
    vectors: np.ndarray, k: int | None, k_values: list[int], seed: int = 0
) -> tuple[np.ndarray, dict]:
    """(labels, scores): K-means with ``k``, or the ``k_values`` sweep's best silhouette."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    data = StandardScaler().fit_transform(vectors)
    candidates = [k] if k else [c for c in k_values if 2 <= c < len(data)]
    if not candidates:
        raise SettingsError(f"{len(data)} images are too few to cluster into {k or k_values} groups")
    scores, best = {}, None
    for count in candidates:
        labels = KMeans(n_clusters=count, n_init=10, random_state=seed).fit_predict(data)
        scores[count] = float(silhouette_score(data, labels)) if len(set(labels)) > 1 else -1.0
        if best is None or scores[count] > scores[best[0]]:
            best = (count, labels)
    return best[1], scores


def contact_sheet(paths: list[Path], thumb: int = 96, columns: int = 8, limit: int = 48) -> bytes:
    shown = paths[:limit]
    rows = max(1, -(-len(shown) // columns))
    sheet = Image.new("RGB", (columns * thumb, rows * thumb), "white")
    for index, path in enumerate(shown):
        picture = Image.fromarray(to_rgb8(read_image(path))).resize((thumb, thumb))
        sheet.paste(picture, ((index % columns) * thumb, (index // columns) * thumb))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def cluster_folder(
    source: str | Path,
    out: str | Path,
    k: int | None = None,
    k_values: list[int] | None = None,
    weights: str | None = "imagenet",
    copy: bool = False,
    seed: int = 0,
) -> dict:
    """Cluster every image of ``source`` and lay the result out as an ImageFolder collection in ``out``."""
    out = Path(out)
    paths = [path for path, _ in list_collection(source)]
    vectors = embed(paths, vgg16_features(weights))
    labels, scores = choose_clusters(vectors, k, k_values or list(range(2, 11)), seed)
    rows = []
    for path, cluster in zip(paths, labels):
        target = out / f"cluster_{cluster:02d}" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        if copy:
            shutil.copy2(path, target)
        else:
            os.symlink(os.path.relpath(path.resolve(), target.parent), target)
        rows.append({"file": str(target.relative_to(out)), "source": str(path), "cluster": int(cluster)})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["file", "source", "cluster"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "clusters.csv", buffer.getvalue())
    for cluster in sorted(set(labels)):
        members = [p for p, c in zip(paths, labels) if c == cluster]
        atomic_write_bytes(out / "_contact_sheets" / f"cluster_{cluster:02d}.png", contact_sheet(members))
    return {"clusters": len(set(labels)), "silhouette": scores, "images": len(paths), "assignments": rows}
