"""Where published weights live: NASA's MicroNet CNN encoders and the ImageNet Swin-T."""

from __future__ import annotations

from dataclasses import dataclass

from csunet.errors import SettingsError

NASA_URL = "https://nasa-public-data.s3.amazonaws.com/microscopy_segmentation_models/{file}"

# Encoders NASA pretrained on MicroNet that segmentation_models_pytorch also builds.
NASA_ENCODERS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d",
    "se_resnet50", "se_resnet101", "se_resnet152", "se_resnext50_32x4d", "se_resnext101_32x4d", "senet154",
    "densenet121", "densenet161", "densenet169", "densenet201",
    "dpn68", "dpn68b", "dpn92", "dpn98", "dpn107", "dpn131",
    "efficientnet-b0", "efficientnet-b1", "efficientnet-b2", "efficientnet-b3",
    "efficientnet-b4", "efficientnet-b5", "efficientnet-b6", "efficientnet-b7",
    "inceptionv4", "inceptionresnetv2", "mobilenet_v2",
    "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "xception",
)  # fmt: skip

CNN_SOURCES = ("imagenet", "micronet", "image-micronet")
_NASA_TAGS = {"micronet": "microscopynet", "image-micronet": "imagenet-microscopynet"}


@dataclass(frozen=True)
class WeightSource:
    """One published weight file: what it is for, where it is, and its SHA-256 when one is published."""

    name: str
    kind: str  # "cnn" or "swin"
    url: str
    filename: str
    sha256: str | None = None


def nasa_file_name(encoder: str, source: str) -> str:
    """NASA's file name, with its two irregular names (resnet50/micronet is v1.1, resnext101_32x8d is resnext101)."""
    if source not in _NASA_TAGS:
        raise SettingsError(f"unknown NASA weights {source!r}; choose from {sorted(_NASA_TAGS)}")
    tag = _NASA_TAGS[source]
    stem = "resnext101" if encoder == "resnext101_32x8d" and source == "micronet" else encoder
    version = "v1.1" if encoder == "resnet50" and source == "micronet" else "v1.0"
    return f"{stem}_pretrained_{tag}_{version}.pth.tar"


def cnn_source(encoder: str, source: str) -> WeightSource:
    if source == "imagenet":
        raise SettingsError(
            "ImageNet CNN weights come through segmentation_models_pytorch (use load_cnn_imagenet)"
        )
    if encoder not in NASA_ENCODERS:
        raise SettingsError(
            f"NASA published no MicroNet weights for {encoder!r}; encoders with them: {', '.join(NASA_ENCODERS)}"
        )
    filename = nasa_file_name(encoder, source)
    return WeightSource(f"{encoder}.{source}", "cnn", NASA_URL.format(file=filename), filename)


SWIN_SOURCES = {
    "swin_t.imagenet": WeightSource(
        "swin_t.imagenet",
        "swin",
        "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth",
        "swin_tiny_patch4_window7_224.pth",
    ),
}


def all_sources() -> list[WeightSource]:
    sources = list(SWIN_SOURCES.values())
    for encoder in NASA_ENCODERS:
        sources += [cnn_source(encoder, s) for s in _NASA_TAGS]
    return sources


def find_source(name: str) -> WeightSource:
    """``swin_t.imagenet`` or ``<encoder>.micronet`` / ``<encoder>.image-micronet``."""
    if name in SWIN_SOURCES:
        return SWIN_SOURCES[name]
    encoder, _, source = name.rpartition(".")
    if not encoder:
        raise SettingsError(f"unknown weights {name!r}; names look like 'resnet50.micronet' or 'swin_t.imagenet'")
    return cnn_source(encoder, source)
