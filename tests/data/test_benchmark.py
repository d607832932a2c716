"""NASA's benchmark as shipped in ../shared: every file reads exactly, and the class statistics are right."""

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from csunet.data import dataset_info, get_task, list_tasks, load_pair, pair_split, read_image
from csunet.data.io import read_array


def _pixels_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes() + str(array.dtype).encode() + str(array.shape).encode()).hexdigest()


def _decode_all(root: Path, family: str, variant: str):
    """Unique masks (by decoded pixels) of every task of a family -> class counts."""
    unique: dict[str, np.ndarray] = {}
    for name in list_tasks():
        if not name.startswith(family) or not name.endswith(variant):
            continue
        description = get_task(name, root)
        for split in description.splits:
            for _, mask_path in pair_split(description, split).pairs + [
                (None, m) for m in pair_split(description, split).masks_without_image
            ]:
                raw = read_array(mask_path)
                key = _pixels_sha256(raw)
                if key not in unique:
                    decoded = description.encoding.decode(raw, mask_path)
                    unique[key] = np.bincount(decoded.ravel(), minlength=description.num_classes)
    return unique


def test_every_present_file_decodes_to_the_manifest_pixels(benchmark_root):
    rows = list(csv.DictReader((benchmark_root / "MANIFEST.tsv").open(), delimiter="\t"))
    present = [r for r in rows if r["status"] == "present"]
    assert len(present) == 236 and len(rows) == 240  # 4 EBC image paths are missing upstream copies
    for row in present:
        path = benchmark_root / row["split"] / row["subdir"] / row["filename"]
        assert _pixels_sha256(read_array(path)) == row["pixels_sha256"], path


def test_every_task_loads_every_pair(benchmark_root):
    for name in list_tasks():
        description = get_task(name, benchmark_root)
        for split in description.splits:
            for image_path, mask_path in pair_split(description, split).pairs:
                image, mask = load_pair(image_path, mask_path, description)
                assert image.shape[-1] == 1, f"{image_path}: grey-in-RGB must read as one channel"
                assert image.min() >= 0.0 and image.max() <= 1.0
                assert mask.max() < description.num_classes


def test_ebc_class_fractions(benchmark_root):
    unique = _decode_all(benchmark_root, "ebc", "-3class")
    assert len(unique) == 24
    total = sum(unique.values())
    fractions = total / total.sum()
    np.testing.assert_allclose(fractions, [0.819, 0.178, 0.0026], atol=0.001)


def test_super_class_fractions(benchmark_root):
    unique = _decode_all(benchmark_root, "super", "")
    total = sum(unique.values())
    fractions = total / total.sum()
    assert fractions[1] == pytest.approx(0.48, abs=0.01)
    assert fractions[2] == pytest.approx(0.025, abs=0.001)


def test_binary_variants_merge_classes(benchmark_root):
    three = get_task("ebc-2-3class", benchmark_root)
    binary = get_task("ebc-2", benchmark_root)
    image_path, mask_path = pair_split(three, "test").pairs[0]
    _, classes = load_pair(image_path, mask_path, three)
    _, oxide = load_pair(image_path, mask_path, binary)
    np.testing.assert_array_equal(oxide, (classes > 0).astype(np.uint8))
    assert get_task("super-1-binary", benchmark_root).classes == ["matrix", "precipitate"]


@pytest.mark.parametrize("stem", ["45kx_SE_15kV-etched_0", "SE_15kv_50kx_precip - untested-2_0"])
def test_sixteen_bit_files_decode_like_eight_bit(benchmark_root, stem):
    description = get_task("super-2", benchmark_root)
    folder = benchmark_root / "Super2"
    raw_image = read_array(folder / "different_test" / f"{stem}.tif")
    raw_mask = read_array(folder / "different_test_annot" / f"{stem}_mask.tif")
    assert raw_image.dtype == np.uint16 and raw_mask.dtype == np.uint16
    as_eight_bit = (raw_mask // 257).astype(np.uint8)
    classes16 = description.encoding.decode(raw_mask)
    np.testing.assert_array_equal(classes16, description.encoding.decode(as_eight_bit))
    assert (classes16 == 1).mean() > 0.05  # the precipitates were found, not all matrix
    image = read_image(folder / "different_test" / f"{stem}.tif")
    np.testing.assert_allclose(image[..., 0], (raw_image[..., 0] // 257) / 255, atol=1 / 255)


def test_ebc1_counts_match_provenance(benchmark_root):
    report = dataset_info(get_task("ebc-1", benchmark_root))
    train = report["splits"]["train"]
    assert train["pairs"] == 16
    assert sorted(train["masks_without_image"]) == [
        "120718#4-B1_50cyc_14260025.tif",
        "122018#3_100cyc-1426C0017.tif",
    ]
    assert [report["splits"][s]["pairs"] for s in ("val", "test")] == [3, 3]
    assert train["sizes"] == {"1024x1024": 16}
    assert report["errors"] == []
    assert len(report["warnings"]) == 1 and "2 mask(s) without an image" in report["warnings"][0]


def test_split_counts_of_every_task(benchmark_root):
    expected = {
        "super-1": (10, 4, 4),
        "super-2": (4, 4, 4, 5),
        "super-3": (1, 4, 4, 5),
        "super-4": (4, 4, 5),
        "ebc-1": (16, 3, 3),
        "ebc-2": (4, 3, 3),
        "ebc-3": (13, 3, 6),
    }
    for name, counts in expected.items():
        description = get_task(name, benchmark_root)
        assert tuple(len(pair_split(description, s).pairs) for s in description.splits) == counts, name
