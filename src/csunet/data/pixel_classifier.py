"""A random forest on multiscale filter features: the pixel classifier of ilastik and Fiji's Trainable Weka
Segmentation, fitted on the labelled pixels of sparse masks (brush strokes).

csunet uses it where strokes cannot say something a network needs before it trains: how wide a class's regions
are (a stroke is as wide as the brush), which the fast recipe's working scale follows (``csunet.train.plan``). The
sparse-label benchmark uses it as the classic tool's method.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from csunet.data.io import grey
from csunet.data.masks import IGNORE_INDEX

FOREST = {"n_estimators": 50, "max_depth": 10, "max_samples": 0.05}
"""scikit-image's trainable-segmentation settings (its gallery example); scikit-learn's defaults otherwise."""


def forest_features(image: np.ndarray) -> np.ndarray:
    """(H, W, F) float32: Gaussian-smoothed intensity, gradient magnitude and Hessian eigenvalues at sigmas 1-16."""
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(grey(image), intensity=True, edges=True, texture=True, sigma_min=1,
                                     sigma_max=16).astype(np.float32)  # fmt: skip


def fit_forest(pairs: Iterable[tuple[np.ndarray, np.ndarray]], seed: int = 0):
    """A forest fitted on the labelled pixels (not ``IGNORE_INDEX``) of (image, mask) pairs."""
    from sklearn.ensemble import RandomForestClassifier

    features, labels = [], []
    for image, mask in pairs:
        labelled = mask != IGNORE_INDEX
        features.append(forest_features(image)[labelled])
        labels.append(mask[labelled])
    forest = RandomForestClassifier(**FOREST, n_jobs=-1, random_state=seed)
    return forest.fit(np.concatenate(features), np.concatenate(labels))


def forest_mask(forest, image: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """(H, W) uint8 class mask of ``image`` as ``forest`` classifies its pixels; with ``smoothing``, the class
    probabilities are Gaussian-smoothed first (sigma in pixels: single-pixel noise no longer splits regions)."""
    from scipy import ndimage

    features = forest_features(image)
    probabilities = forest.predict_proba(features.reshape(-1, features.shape[-1]))
    probabilities = probabilities.reshape(*features.shape[:2], -1)
    if smoothing:
        probabilities = ndimage.gaussian_filter(probabilities, (smoothing, smoothing, 0))
    return forest.classes_[probabilities.argmax(-1)].astype(np.uint8)
