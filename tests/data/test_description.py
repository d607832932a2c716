"""Dataset description files, `data init`, and the Dataset on the bundled sample."""

import shutil

import albumentations as A
import numpy as np
import pytest
import tifffile
import torch

from csunet.data import (
    ColourEncoding,
    DataError,
    DatasetDescription,
    IndexEncoding,
    SegmentationDataset,
    init_description,
    load_description,
    sample_description,
    sample_root,
    write_description,
)


def test_sample_is_super1_with_licence():
    root = sample_root()
    assert (root.parent / "LICENSE.txt").read_text().startswith("MIT License")
    assert "Stuckner" in (root.parent / "ATTRIBUTION.md").read_text()
    description = sample_description()
    counts = {s: len(SegmentationDataset(description, s)) for s in description.splits}
    assert counts == {"train": 10, "val": 4, "test": 4}


def test_dataset_yields_tensors_and_applies_albumentations():
    dataset = SegmentationDataset("sample", "val", transform=A.Compose([A.CenterCrop(128, 96)]))
    image, mask = dataset[0]
    assert image.dtype == torch.float32 and image.shape == (3, 128, 96)
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])  # grey repeated
    assert mask.dtype == torch.int64 and mask.shape == (128, 96)
    assert set(mask.unique().tolist()) <= {0, 1, 2}
    grey = SegmentationDataset("sample", "val", channels=1)[0][0]
    assert grey.shape == (1, 512, 512)


def test_yaml_round_trip(tmp_path):
    text = """
name: coating
classes: [background, oxide]
mask:
  encoding: index
  values: {background: 0, oxide: [1, 2]}
  ignore: 255
splits:
  train: {images: tr, masks: tr_annot}
  test: {images: te, masks: te_annot}
pixel_size_um: 0.05
"""
    (tmp_path / "d.yaml").write_text(text)
    description = load_description(tmp_path / "d.yaml")
    assert description.encoding == IndexEncoding({0: 0, 1: 1, 2: 1}, ignore=255)
    assert description.split("train").images == tmp_path / "tr"
    assert description.pixel_size_um == 0.05
    description.save(tmp_path / "again.yaml")
    again = DatasetDescription.load(tmp_path / "again.yaml")
    assert again.encoding == description.encoding and again.splits == description.splits
    assert again.classes == description.classes and again.pixel_size_um == 0.05


def test_a_partial_colour_table_colours_the_rest_by_default_and_numbers_name_folders(tmp_path):
    (tmp_path / "d.yaml").write_text(
        "classes: [matrix, oxide]\nimages: 2024\nmasks: 2024_masks\nclass_colours: {oxide: '#ff0000'}\n"
        "pixel_size_um: null\n"
    )
    description = load_description(tmp_path / "d.yaml")
    assert description.pixel_size_um is None  # null: not known, as when the key is left out
    assert description.class_colours == [(0, 0, 0), (255, 0, 0)]  # matrix: the palette's first colour
    assert description.split("all").images == tmp_path / "2024"  # YAML reads 2024 as a number: still a folder
    with pytest.raises(DataError, match="class_colours names class 'oxyde'"):
        DatasetDescription.from_dict({"classes": ["matrix", "oxide"], "images": "i", "masks": "m",
                                      "class_colours": {"oxyde": "#ff0000"}})  # fmt: skip
    with pytest.raises(DataError, match=r"splits.train.images must be text, not \[1\]"):
        DatasetDescription.from_dict({"classes": ["a", "b"], "splits": {"train": {"images": [1], "masks": "m"}}})


def test_colour_yaml_with_default(tmp_path):
    (tmp_path / "d.yaml").write_text(
        "classes: [matrix, secondary, tertiary]\nimages: i\nmasks: m\n"
        "mask: {encoding: colour, colours: {secondary: '#0000ff', tertiary: [255, 0, 0]}, default: matrix,"
        " suffix: _mask}\n"
    )
    description = load_description(tmp_path / "d.yaml")
    assert description.encoding == ColourEncoding({(0, 0, 255): 1, (255, 0, 0): 2}, default=0)
    assert description.mask_suffix == "_mask"


def test_init_on_nasa_style_colour_overlays(tmp_path):
    root = tmp_path / "mine"
    shutil.copytree(sample_root(), root)
    data = init_description(root)
    assert data["splits"]["train"] == {"images": "train", "masks": "train_annot"}
    assert data["mask"] == {"encoding": "colour", "suffix": "_mask"}
    assert data["classes"] == {"matrix": "other", "class_1": "#0000ff", "class_2": "#ff0000"}
    assert data["background"] == "matrix"
    path = write_description(root)
    description = load_description(path)
    reference = sample_description()
    dataset = SegmentationDataset(description, "test")
    ref = SegmentationDataset(reference, "test")
    # same pixels, classes named generically: blue is the most common colour, so class_1 = secondary
    assert torch.equal(dataset[0][1], ref[0][1])
    with pytest.raises(Exception, match="already exists"):
        write_description(root)


def test_init_accepts_an_overlay_with_nothing_painted(tmp_path):
    root = tmp_path / "mine"
    shutil.copytree(sample_root(), root)
    last = root / "val_annot" / "spot1_180d_6_mask.tif"  # read last
    grey = np.full((512, 512, 4), 128, np.uint8)
    tifffile.imwrite(last, grey, photometric="rgb", extrasamples=["unassalpha"])
    data = init_description(root)
    assert data["mask"]["encoding"] == "colour" and data["classes"]["matrix"] == "other"


def test_init_on_index_masks_with_png(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for i in range(3):
        tifffile.imwrite(tmp_path / "images" / f"im{i}.tif", np.full((16, 16), 40 * i, np.uint8))
        mask = np.zeros((16, 16), np.uint8)
        mask[: 4 * (i + 1)] = 3
        from PIL import Image

        Image.fromarray(mask).save(tmp_path / "labels" / f"im{i}.png")
    out = write_description(tmp_path, tmp_path / "desc" / "d.yaml")
    description = load_description(out)
    assert description.classes == ["matrix", "class_3"] and description.background == 0
    assert description.encoding == IndexEncoding({0: 0, 3: 1})
    # the layout the README shows for a single folder pair, and one place to name each class
    text = out.read_text()
    assert "images: ../images\nmasks: ../labels\n" in text or "images: images\nmasks: labels\n" in text
    assert "classes:\n  matrix: 0\n  class_3: 3\n" in text
    renamed = text.replace("matrix", "ferrite").replace("class_3", "pearlite")
    out.write_text(renamed)
    assert load_description(out).classes == ["ferrite", "pearlite"]
    dataset = SegmentationDataset(description, "all")
    assert len(dataset) == 3 and int(dataset[2][1].sum()) == 12 * 16
