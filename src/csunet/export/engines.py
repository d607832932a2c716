"""Engines that run a trained model, and the choice among them.

- ``torch``: the checkpoint in PyTorch; batch norm folded into the convolutions, channels-last; on a GPU with
  bf16 autocast.
- ``onnx``: the ONNX export in ONNX Runtime.
- ``openvino``: the ONNX export converted to OpenVINO's IR, fp32.
- ``openvino-int8``: the int8 IR written by ``csunet export --int8`` (only after it passed its accuracy check).
- ``auto`` (the default): on a GPU ``torch``; on a CPU the fastest that is installed and valid for this file:
  ``openvino-int8`` when the checkpoint has an accepted int8 export, then ``openvino``, ``onnx``, ``torch``.

A model bundle (``.zip``, :mod:`csunet.export.bundle`) or the name of an installed one stands for its ONNX model.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

from csunet.checkpoint import CheckpointMeta, LoadedCheckpoint, load_checkpoint
from csunet.errors import SettingsError
from csunet.export.bundle import resolve as resolve_bundle
from csunet.export.onnx import META_KEY, OnnxRuntimeModel, csunet_metadata, ensure_onnx
from csunet.export.openvino import (
    FP32_SUFFIX,
    INT8_SUFFIX,
    OpenVinoModel,
    ensure_openvino,
    int8_is_current,
    ir_path,
)

ENGINES = ("auto", "torch", "onnx", "openvino", "openvino-int8")


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def choose_engine(path: str | os.PathLike, device: str | torch.device = "cpu") -> str:
    """What ``auto`` runs for ``path`` on ``device`` (see the module's text)."""
    path = resolve_bundle(path) or Path(path)
    if path.name.endswith(INT8_SUFFIX):
        return "openvino-int8"
    if path.name.endswith(FP32_SUFFIX):
        return "openvino"
    if torch.device(device).type != "cpu":
        return "torch"
    if installed("openvino"):
        return "openvino-int8" if int8_is_current(path) else "openvino"
    if installed("onnxruntime"):
        return "onnx"
    return "torch"


class Bf16Autocast(nn.Module):
    """Runs the wrapped model under bf16 autocast on its GPU, returning float32 logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        with torch.autocast(tiles.device.type, torch.bfloat16):
            return self.model(tiles).float()


def torch_engine(path: Path, device: str | torch.device, bf16: bool | None = None) -> LoadedCheckpoint:
    """The checkpoint in PyTorch, ready for inference: channels-last; bf16 on a GPU unless ``bf16`` is False.

    Channels-last convolutions are ~10 % faster on both our CPU types (benchmarks/results/speed_cpu.md); folding
    batch norm into the convolutions, which this engine did before, was slower on both (Intel Xeon 0.857 s against
    0.772 s per 512 tile, AMD EPYC 1.085 s against 0.904 s), so it is gone."""
    loaded = load_checkpoint(path, device)
    model = loaded.model.eval().to(memory_format=torch.channels_last)
    if bf16 is None:
        bf16 = next(model.parameters()).device.type == "cuda"
    return LoadedCheckpoint(Bf16Autocast(model) if bf16 else model, loaded.meta, loaded.path, "torch")


def load_engine(
    path: str | os.PathLike, engine: str = "auto", device: str | torch.device = "cpu", bf16: bool | None = None
) -> LoadedCheckpoint:
    """A model ready to predict with, run by ``engine`` (see the module's text); ``.engine`` says which ran.
    ``bf16=False`` keeps the torch engine in fp32 on a GPU too (evaluation reports the model as trained).

    With a ``.ckpt``, the ONNX and OpenVINO files are made beside it on first use (and again when the checkpoint
    changed since); an ``.onnx`` file runs in ONNX Runtime or OpenVINO, an OpenVINO ``.xml`` in OpenVINO.
    """
    if engine not in ENGINES:
        raise SettingsError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    path = resolve_bundle(path) or Path(path)  # a bundle (.zip) or an installed model's name: its ONNX model
    if engine == "auto":
        engine = choose_engine(path, device)
    if engine == "torch":
        if path.suffix in (".onnx", ".xml"):  # bundles too: they hold the ONNX model
            raise SettingsError(f"{path}: the torch engine runs training checkpoints (.ckpt), not exported files")
        return torch_engine(path, device, bf16)
    if engine == "onnx":
        if path.suffix == ".xml":
            raise SettingsError(f"{path}: an OpenVINO file runs in the openvino engines, not in ONNX Runtime")
        onnx_path = ensure_onnx(path)[0]
        model = OnnxRuntimeModel(onnx_path)
        # the session already holds the metadata: no second parse of the file
        metadata = csunet_metadata(model.session.get_modelmeta().custom_metadata_map, onnx_path)
        return LoadedCheckpoint(model, CheckpointMeta.from_dict(metadata[META_KEY], onnx_path), onnx_path, "onnx")
    if engine == "openvino":
        ir = ensure_openvino(path)[0]
    else:
        ir = ir_path(path, int8=True)
        if not ir.is_file() or not int8_is_current(path):
            state = "is older than the checkpoint" if ir.is_file() else "does not exist"
            raise SettingsError(
                f"{path}: its int8 export {ir.name} {state}; make one with `csunet export {path} --int8`"
            )
    model = OpenVinoModel(ir)
    return LoadedCheckpoint(model, CheckpointMeta.from_dict(model.metadata[META_KEY], ir), ir, engine)
