"""Each kind of bad input gets an error naming the file and the problem, and nothing else is lost."""

import shutil
import warnings

import numpy as np
import pytest
import tifffile

from csunet.data import DataError, DataWarning, SegmentationDataset, dataset_info, load_description, sample_root
from csunet.data.tasks import super_description


@pytest.fixture
def sample_copy(tmp_path):
    """A writable copy of the bundled Super-1 sample."""
    root = tmp_path / "super1"
    shutil.copytree(sample_root(), root)
    return root


def test_corrupt_image_named(sample_copy):
    victim = sample_copy / "train" / "spot3_0d_3.tif"
    victim.write_bytes(victim.read_bytes()[:200])
    dataset = SegmentationDataset(super_description(sample_copy, "copy"), "train")
    index = dataset.names().index("spot3_0d_3.tif")
    with pytest.raises(DataError, match=r"spot3_0d_3\.tif: cannot decode image"):
        dataset[index]
    # the other images still load
    image, mask = dataset[(index + 1) % len(dataset)]
    assert image.shape == (3, 512, 512) and mask.shape == (512, 512)


def test_unreadable_text_file_named(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    from csunet.data import read_image

    with pytest.raises(DataError, match=r"notes\.png: cannot decode image"):
        read_image(bad)


def test_size_mismatch_names_both_files(sample_copy):
    mask = sample_copy / "val_annot" / "spot1_0d_0_mask.tif"
    tifffile.imwrite(mask, tifffile.imread(mask)[:256], photometric="rgb", extrasamples=["unassalpha"])
    dataset = SegmentationDataset(super_description(sample_copy, "copy"), "val")
    with pytest.raises(DataError, match=r"spot1_0d_0_mask\.tif: mask is 512x256 .* spot1_0d_0\.tif is 512x512"):
        dataset[dataset.names().index("spot1_0d_0.tif")]


def test_values_outside_table_counted(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "a.tif", np.zeros((8, 8), np.uint8))
    mask = np.zeros((8, 8), np.uint8)
    mask[:2] = 3
    tifffile.imwrite(tmp_path / "masks" / "a.tif", mask)
    (tmp_path / "d.yaml").write_text("classes: [bg, fg]\nimages: images\nmasks: masks\n")
    dataset = SegmentationDataset(tmp_path / "d.yaml", "all")
    with pytest.raises(DataError, match=r"a\.tif: mask values outside the class table \[0, 1\]: 3 \(16 px\)"):
        dataset[0]
    report = dataset_info(load_description(tmp_path / "d.yaml"))
    assert len(report["errors"]) == 1 and "3 (16 px)" in report["errors"][0]


def test_empty_split_and_missing_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "d.yaml").write_text("classes: [bg, fg]\nimages: images\nmasks: masks\n")
    with pytest.raises(DataError, match=r"images: split 'all' has no image with a matching mask"):
        SegmentationDataset(tmp_path / "d.yaml", "all")
    (tmp_path / "e.yaml").write_text("classes: [bg, fg]\nimages: pictures\nmasks: masks\n")
    with pytest.raises(DataError, match=r"pictures: image folder does not exist"):
        SegmentationDataset(tmp_path / "e.yaml", "all")


def test_orphans_reported_in_one_warning_and_skipped(sample_copy):
    (sample_copy / "test" / "spot2_0d_0.tif").unlink()
    (sample_copy / "test_annot" / "spot2_0d_4_mask.tif").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = SegmentationDataset(super_description(sample_copy, "copy"), "test")
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1
    assert "spot2_0d_4.tif" in messages[0] and "spot2_0d_0_mask.tif" in messages[0]
    assert dataset.names() == ["spot2_180d_3.tif", "spot2_180d_5.tif"]


def test_bad_description_files(tmp_path):
    cases = {
        "missing.yaml": None,
        "broken.yaml": "classes: [a, b\n",
        "noclasses.yaml": "images: i\nmasks: m\n",
        "nofolders.yaml": "classes: [a]\n",
        "badclass.yaml": "classes: [a]\nimages: i\nmasks: m\nmask: {values: {b: 1}}\n",
        "badcolour.yaml": "classes: [a]\nimages: i\nmasks: m\nmask: {encoding: colour, colours: {a: '#12'}}\n",
    }
    expected = {
        "missing.yaml": "does not exist",
        "broken.yaml": "not valid YAML",
        "noclasses.yaml": "missing required field 'classes'",
        "nofolders.yaml": "give either 'splits' or both 'images' and 'masks'",
        "badclass.yaml": "names class 'b', which is not in classes",
        "badcolour.yaml": "not of the form '#rrggbb'",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match=f"{name}.*{expected[name]}"):
            load_description(tmp_path / name)
