"""Loading foreign checkpoints into our models, with a report of exactly what happened to every tensor.

Filters (one per foreign format, as timm does) turn a checkpoint's keys into ours; ``apply_state`` then loads
only tensors whose shape fits (resizing relative-position tables when the window differs) and returns a
:class:`LoadReport`. A load that leaves a whole encoder stage fresh raises instead of passing silently.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from timm.layers import resize_rel_pos_bias_table
from torch import nn

from csunet.models.registry import capabilities_of, model_part
from csunet.models.swin import DECODER_LEVELS
from csunet.weights.catalog import CNN_SOURCES, cnn_source
from csunet.weights.files import WeightsError, read_state_dict, sha256_of
from csunet.weights.store import fetch, resolve

_STATE_FILE = str | os.PathLike | dict


@dataclass
class LoadReport:
    """What a weight load did: per tensor name of the target module."""

    target: str
    source: str
    loaded: list[str] = field(default_factory=list)
    resized: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)
    mirrored: dict[str, str] = field(default_factory=dict)  # our key -> checkpoint key it was copied from
    missing: list[str] = field(default_factory=list)  # left fresh
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, ignored

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "source": self.source,
            "counts": {
                k: len(getattr(self, k)) for k in ("loaded", "resized", "mirrored", "missing", "unexpected")
            },
            "loaded": self.loaded,
            "resized": {k: {"from": a, "to": b} for k, (a, b) in self.resized.items()},
            "mirrored": self.mirrored,
            "missing": self.missing,
            "unexpected": self.unexpected,
        }

    def __str__(self) -> str:
        mirrored = f", {len(self.mirrored)} of them mirrored into the decoder" if self.mirrored else ""
        lines = [
            f"{self.target} <- {self.source}: {len(self.loaded)} tensors loaded ({len(self.resized)} resized"
            f"{mirrored}), {len(self.missing)} left fresh, {len(self.unexpected)} ignored"
        ]
        lines += [f"  resized {k}: {a} -> {b}" for k, (a, b) in self.resized.items()]
        lines += [f"  fresh   {group}" for group in _group_names(self.missing)]
        lines += [f"  ignored {group}" for group in _group_names(self.unexpected)]
        return "\n".join(lines)


def _group_names(keys: list[str]) -> list[str]:
    """Collapse ``a.0.b.w, a.1.b.w`` into ``a.*.b.w (2)`` so reports stay readable."""
    groups: dict[str, int] = defaultdict(int)
    for key in keys:
        groups[re.sub(r"\.\d+\.", ".*.", key)] += 1
    return [f"{k} ({n})" if n > 1 else k for k, n in groups.items()]


def apply_state(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    target: str,
    source: str,
    required_groups: list[str],
    mirrored: dict[str, str] | None = None,
) -> LoadReport:
    """Load ``state`` (already in our key names) into ``module`` and report.

    ``required_groups`` are key prefixes (e.g. ``layers.0``) of which each must receive at least one tensor.
    Relative-position bias tables of another window size are resized; any other shape mismatch is an error.
    """
    own = module.state_dict()
    report = LoadReport(target, source, mirrored=dict(mirrored or {}))
    accepted: dict[str, torch.Tensor] = {}
    mismatched = []
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
            continue
        if value.shape != own[key].shape:
            if key.endswith("relative_position_bias_table"):
                window = module.get_submodule(key.rsplit(".", 1)[0]).window_size
                with warnings.catch_warnings():  # timm's interpolation warns about torch internals
                    warnings.simplefilter("ignore", UserWarning)
                    new = resize_rel_pos_bias_table(value, new_window_size=window, new_bias_shape=own[key].shape)
                report.resized[key] = (list(value.shape), list(new.shape))
                value = new
            else:
                mismatched.append(f"{key}: checkpoint {list(value.shape)}, model {list(own[key].shape)}")
                continue
        accepted[key] = value.to(own[key].dtype)
        report.loaded.append(key)
    if mismatched:
        raise WeightsError(
            f"{source}: {len(mismatched)} tensors do not fit {target}:\n  " + "\n  ".join(mismatched)
        )
    report.missing = [k for k in own if k not in accepted]
    empty = [g for g in required_groups if not any(k == g or k.startswith(g + ".") for k in accepted)]
    if empty:
        sample = ", ".join(sorted(state)[:5])
        raise WeightsError(
            f"{source}: nothing in this checkpoint loads into {target} stage(s) {', '.join(empty)}; "
            f"its keys look like: {sample} ... (wrong file, or a format we do not know)"
        )
    module.load_state_dict(accepted, strict=False)
    return report


# ---- Swin-T checkpoints ---------------------------------------------------------------------------------------

_SKIP_BUFFERS = ("relative_position_index", "attn_mask", "relative_coords_table")


def swin_filter(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Microsoft or timm Swin checkpoint -> our SwinEncoder keys (which are timm's).

    Microsoft's format downsamples at the end of a stage (``layers.0.downsample``) and timm at the start of the
    next (``layers.1.downsample``); the classifier head is dropped; buffers recomputed at build time are dropped.
    Prefixes from wrappers (``module.``, ``swin.``, ``encoder.``, ``backbone.``) are stripped.
    """
    state = _strip_prefix(state, ("module.", "swin.", "encoder.", "backbone."))
    microsoft = "layers.0.downsample.reduction.weight" in state
    out = {}
    for key, value in state.items():
        if key.startswith("head") or any(buffer in key for buffer in _SKIP_BUFFERS):
            continue
        if microsoft:
            key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", key)
        out[key] = value
    return out


def _strip_prefix(state: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    for prefix in prefixes:
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _read(checkpoint: _STATE_FILE, source: str | None) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(checkpoint, dict):
        return checkpoint, source or "<state dict>"
    return read_state_dict(checkpoint), source or str(checkpoint)


def load_swin(
    model: nn.Module, checkpoint: _STATE_FILE, mirror_decoder: bool = True, source: str | None = None
) -> LoadReport:
    """Load a Swin-T checkpoint into ``model.swin`` and, mirrored, into the Swin blocks of ``model.decoder``.

    Decoder stage at level i starts from encoder stage i's blocks (Swin-Unet's initialisation). ResMLP's fc1/fc2
    take the checkpoint's MLP; fc3 stays fresh (reported as such).
    """
    state, source = _read(checkpoint, source)
    swin_state = swin_filter(state)
    encoder = model_part(model, "swin")
    if encoder is None:
        raise WeightsError(f"{type(model).__name__} has no Swin encoder to load {source} into")
    groups = (["patch_embed"] if hasattr(encoder, "patch_embed") else []) + [
        f"layers.{i}" for i in range(len(encoder.layers))
    ]
    report = apply_state(encoder, swin_state, "swin encoder", source, groups)
    if not mirror_decoder or not capabilities_of(model).decoder_mirrors_swin:
        return report
    loaded_encoder = encoder.state_dict()
    decoder_state, origin = {}, {}
    for stage_index, level in enumerate(DECODER_LEVELS):
        prefix = f"layers.{level}.blocks."
        for key, value in loaded_encoder.items():
            if key.startswith(prefix) and key in report.loaded:
                ours = f"stages.{stage_index}.blocks.{key[len(prefix) :]}"
                decoder_state[ours], origin[f"decoder.{ours}"] = value, f"swin.{key}"
    decoder_report = apply_state(
        model.decoder, decoder_state, "decoder", source, [f"stages.{i}.blocks" for i in range(3)], mirrored=origin
    )
    return _merge(report, decoder_report, "swin.", "decoder.")


def _merge(encoder: LoadReport, decoder: LoadReport, encoder_prefix: str, decoder_prefix: str) -> LoadReport:
    return LoadReport(
        target="swin encoder + decoder (mirrored)",
        source=encoder.source,
        loaded=[encoder_prefix + k for k in encoder.loaded] + [decoder_prefix + k for k in decoder.loaded],
        resized={encoder_prefix + k: v for k, v in encoder.resized.items()}
        | {decoder_prefix + k: v for k, v in decoder.resized.items()},
        mirrored=decoder.mirrored,
        missing=[encoder_prefix + k for k in encoder.missing] + [decoder_prefix + k for k in decoder.missing],
        unexpected=[encoder_prefix + k for k in encoder.unexpected],
    )


# ---- CNN encoders (smp state dicts: MicroNet, ImageNet->MicroNet, ImageNet) ------------------------------------


def cnn_filter(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NASA's files are smp encoder state dicts; also accept whole-model dicts (``encoder.`` / ``module.``)."""
    state = _strip_prefix(state, ("module.",))
    if any(k.startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    return state


def _cnn_groups(cnn: nn.Module) -> list[str]:
    """Top-level children of the CNN that hold parameters: each must receive weights."""
    return [name for name, child in cnn.named_children() if any(True for _ in child.parameters())]


def load_cnn(model: nn.Module, checkpoint: _STATE_FILE, source: str | None = None) -> LoadReport:
    """Load an smp encoder state dict (e.g. NASA's MicroNet file) into ``model.cnn`` (or ``model.encoder``)."""
    state, source = _read(checkpoint, source)
    cnn = cnn_module(model)
    return apply_state(cnn, cnn_filter(state), "CNN encoder", source, _cnn_groups(cnn))


def cnn_module(model: nn.Module) -> nn.Module:
    module = model_part(model, "cnn")
    if module is None:
        raise WeightsError(f"{type(model).__name__} has no CNN encoder to load weights into")
    return module


def load_cnn_imagenet(model: nn.Module, encoder_name: str) -> LoadReport:
    """ImageNet weights through segmentation_models_pytorch's own mechanism (its weight hub)."""
    import segmentation_models_pytorch as smp

    try:
        reference = smp.encoders.get_encoder(encoder_name, in_channels=3, depth=5, weights="imagenet")
    except KeyError as exc:
        raise WeightsError(f"smp has no ImageNet weights for {encoder_name!r}: {exc}") from None
    except Exception as exc:
        raise WeightsError(
            f"smp could not fetch ImageNet weights for {encoder_name!r} ({type(exc).__name__}: {exc}); "
            "without internet, import an smp encoder state dict with `csunet weights import`"
        ) from exc
    return load_cnn(model, reference.state_dict(), source=f"smp {encoder_name} imagenet")


def detect_format(state: dict[str, torch.Tensor]) -> str:
    microsoft_head = "head.weight" in state and "patch_embed.proj.weight" in state
    if "layers.0.downsample.reduction.weight" in state or microsoft_head:
        return "swin (Microsoft)"
    if "patch_embed.proj.weight" in swin_filter(state):
        return "swin (timm)"
    return "cnn / other state dict"


def inspect_file(path: str | os.PathLike) -> dict:
    """What a checkpoint holds: format, tensor and parameter counts, dtypes, top-level groups, SHA-256."""
    state = read_state_dict(path)
    groups: dict[str, int] = {}
    for key, value in state.items():
        top = key.split(".")[0]
        groups[top] = groups.get(top, 0) + value.numel()
    return {
        "path": str(path),
        "format": detect_format(state),
        "tensors": len(state),
        "parameters": int(sum(v.numel() for v in state.values())),
        "dtypes": sorted({str(v.dtype).replace("torch.", "") for v in state.values()}),
        "groups": groups,
        "sha256": sha256_of(path),
    }


def load_pretrained(
    model: nn.Module,
    swin: str | os.PathLike | None = None,
    cnn: str | os.PathLike | None = None,
    encoder_name: str | None = None,
    progress: bool = True,
) -> list[LoadReport]:
    """Load Swin and/or CNN weights into a registry model and return the reports.

    ``swin``: a file or a catalogue name (``swin_t.imagenet``). ``cnn``: ``imagenet`` (through smp),
    ``micronet`` / ``image-micronet`` (NASA, for ``encoder_name``), or a file.
    """
    reports = []
    if swin is not None:
        reports.append(load_swin(model, resolve(swin, progress)))
    if cnn is not None:
        if encoder_name is None:
            cnn_module(model)  # a model without a CNN part is refused by name
            encoder_name = model.encoder_name  # every model with one names its smp encoder (Capabilities.cnn)
        if cnn == "imagenet":
            reports.append(load_cnn_imagenet(model, encoder_name))
        elif cnn in CNN_SOURCES:
            reports.append(load_cnn(model, fetch(cnn_source(encoder_name, cnn).name, progress)))
        else:
            reports.append(load_cnn(model, resolve(cnn, progress)))
    return reports
