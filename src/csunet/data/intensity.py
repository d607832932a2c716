"""Per-image intensity standardisation: what a micrograph goes through before the dataset-wide normalisation, the
same in training and at prediction, always over the whole image.

Another specimen or another microscope setting moves grey levels by a monotonic map: on NASA's EBC-3 the test
specimen's grey levels are about the training images' raised to the power 0.4-0.55 in the dark half (the oxide's
median 0.32 -> 0.60), on Super-4 to about 1.7-2.2 (``benchmarks/results/specimen_shift.md``). Histogram
equalisation depends only on the order of the grey levels, so any such map leaves its output unchanged.

- ``none``: the grey levels as read (the paper's).
- ``equalize``: each channel's histogram equalised (scikit-image's ``equalize_hist``, 256 bins).
"""

from __future__ import annotations

import numpy as np

INTENSITY_METHODS = ("none", "equalize")
EQUALIZE_BINS = 256


def standardise(image: np.ndarray, method: str) -> np.ndarray:
    """(H, W, C) float image in [0, 1] -> the same shape, float32 in [0, 1], standardised by ``method``."""
    if method == "none":
        return image
    if method != "equalize":
        raise ValueError(
            f"unknown intensity standardisation {method!r}; choose from {', '.join(INTENSITY_METHODS)}"
        )
    from skimage.exposure import equalize_hist

    out = np.empty(image.shape, dtype=np.float32)
    for channel in range(image.shape[-1]):
        plane = image[..., channel]
        # a flat plane has no order to keep: mid-grey, as equalize_hist would divide by zero
        out[..., channel] = 0.5 if plane.min() == plane.max() else equalize_hist(plane, nbins=EQUALIZE_BINS)
    return out
