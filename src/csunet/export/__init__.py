"""Trained models as files that predict without training code: ONNX (run by ONNX Runtime), OpenVINO's IR in fp32,
and OpenVINO int8 that passed an accuracy check; and the engines that run them (:func:`load_engine`)."""

from csunet.export.engines import ENGINES, choose_engine, load_engine
from csunet.export.onnx import (
    META_KEY,
    SOURCE_KEY,
    OnnxRuntimeModel,
    ensure_onnx,
    export_checkpoint,
    export_model,
    read_onnx_metadata,
)
from csunet.export.openvino import OpenVinoModel, ensure_openvino, ir_path

__all__ = [
    "ENGINES",
    "META_KEY",
    "SOURCE_KEY",
    "OnnxRuntimeModel",
    "OpenVinoModel",
    "choose_engine",
    "ensure_onnx",
    "ensure_openvino",
    "export_checkpoint",
    "export_model",
    "ir_path",
    "load_engine",
    "read_onnx_metadata",
]
