"""The OpenVINO engine: our ONNX export converted to OpenVINO's IR and compiled for this machine's CPU.

The IR (``NAME.openvino.xml`` + ``.bin``; int8: ``NAME.int8.xml``) is cached beside the checkpoint as the ONNX file
is, carries the same csunet metadata (in its ``rt_info``) and a stamp of the file it was made from, so it is made
again when the checkpoint changes. fp32 means fp32: OpenVINO would otherwise run bf16 on CPUs that have it, which
is not the function we trained.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import torch

from csunet.checkpoint import CheckpointError
from csunet.export.onnx import META_KEY, SOURCE_KEY, ensure_onnx, read_onnx_metadata, source_stamp

FP32_SUFFIX = ".openvino.xml"
INT8_SUFFIX = ".int8.xml"
RT_KEY = "csunet"
"""``rt_info`` section of the IR holding the csunet metadata (JSON strings, as in the ONNX file)."""


def openvino_core():
    """OpenVINO's runtime, or a clear message when the package is missing."""
    try:
        import openvino
    except ImportError:
        raise CheckpointError(
            "the openvino engine needs the openvino package: pip install openvino (or choose --engine onnx)"
        ) from None
    return openvino


def ir_path(path: str | os.PathLike, int8: bool = False) -> Path:
    """Where the IR of a checkpoint or ONNX file is cached: ``best.ckpt`` -> ``best.openvino.xml``."""
    path = Path(path)
    stem = next((path.name[: -len(s)] for s in (FP32_SUFFIX, INT8_SUFFIX) if path.name.endswith(s)), path.stem)
    return path.with_name(stem + (INT8_SUFFIX if int8 else FP32_SUFFIX))


def read_ir_metadata(model) -> dict:
    """The csunet metadata of a read IR model (``openvino.Model``)."""
    found = {}
    for key in (META_KEY, SOURCE_KEY, "int8"):
        if model.has_rt_info([RT_KEY, key]):
            found[key] = json.loads(model.get_rt_info([RT_KEY, key]).astype(str))
    return found


def write_ir_metadata(model, metadata: dict) -> None:
    for key, value in metadata.items():
        model.set_rt_info(json.dumps(value), [RT_KEY, key])


def save_ir(model, path: Path) -> Path:
    """Write ``model`` as IR at ``path`` (xml + bin) without leaving a half-written pair: both are written in a
    temporary folder beside it, then moved in, the weights first."""
    ov = openvino_core()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".ir-") as work:
        staged = Path(work) / path.name
        ov.save_model(model, str(staged), compress_to_fp16=False)
        os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(staged, path)
    return path


def ensure_openvino(path: str | os.PathLike) -> tuple[Path, float | None]:
    """The fp32 IR for a checkpoint or ONNX file (made from the ONNX export when missing or stale), and the
    seconds spent making it (None: it was up to date)."""
    path = Path(path)
    if path.name.endswith((FP32_SUFFIX, INT8_SUFFIX)):
        return path, None
    onnx_path, export_seconds = ensure_onnx(path)
    target = ir_path(path)
    stamp = source_stamp(onnx_path)
    if export_seconds is None and target.is_file() and target.with_suffix(".bin").is_file():
        model = openvino_core().Core().read_model(str(target))
        if read_ir_metadata(model).get(SOURCE_KEY) == stamp:
            return target, None
    started = time.perf_counter()
    ov = openvino_core()
    model = ov.convert_model(str(onnx_path))
    metadata = read_onnx_metadata(onnx_path)
    write_ir_metadata(model, {META_KEY: metadata[META_KEY], SOURCE_KEY: stamp})
    save_ir(model, target)
    return target, time.perf_counter() - started + (export_seconds or 0.0)


class OpenVinoModel:
    """A callable like the PyTorch model: (B, C, T, T) tiles -> (B, K, T, T) logits, run by OpenVINO on the CPU
    in fp32 (int8 where the IR was quantised)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, latency: bool = True) -> None:
        ov = openvino_core()
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such OpenVINO file")
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: not an OpenVINO model ({str(exc).splitlines()[0]})") from None
        self.metadata = read_ir_metadata(model)
        if META_KEY not in self.metadata:
            raise CheckpointError(f"{path}: no csunet metadata; make it with `csunet export CHECKPOINT`")
        self.config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY" if latency else "THROUGHPUT",
        }
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        self.core, self.model, self.path = core, model, path
        self.requests: dict[int, object] = {}
        self.device = torch.device("cpu")

    def request(self, batch: int):
        """An inference request compiled for batches of exactly ``batch`` tiles: static shapes let OpenVINO plan
        memory and pick kernels once (a sliding window sees at most two batch sizes)."""
        if batch not in self.requests:
            model = self.model.clone()
            shape = model.inputs[0].get_partial_shape()
            shape[0] = batch
            model.reshape({model.inputs[0]: shape})
            self.requests[batch] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        return self.requests[batch]

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        array = tiles.detach().to("cpu", torch.float32).contiguous().numpy()
        result = self.request(array.shape[0]).infer({0: array}, share_inputs=True)
        return torch.from_numpy(result[0].copy())


def int8_is_current(checkpoint: str | os.PathLike) -> bool:
    """Whether the int8 IR beside ``checkpoint`` exists and was made from the checkpoint as it is now."""
    target = ir_path(checkpoint, int8=True)
    if not target.is_file() or not Path(checkpoint).is_file() or Path(checkpoint).suffix == ".xml":
        return target.is_file()
    record = read_ir_metadata(openvino_core().Core().read_model(str(target))).get("int8", {})
    return record.get("checkpoint") == source_stamp(Path(checkpoint))
