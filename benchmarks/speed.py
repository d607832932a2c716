"""Speed and memory of CS-UNet (resnet50 + intermediate Swin-T, 512 / window 8, fp32, random weights).

    python -m benchmarks.speed                  # CPU: inference engines, training step, large micrographs
    python -m benchmarks.speed --compile        # also torch.compile (minutes of compiling on a small CPU)
    python -m benchmarks.speed --device cuda    # GPU: training and inference throughput, fp32 and bf16 AMP

Every case runs in a fresh process (peak memory and allocator settings belong to a process); the parent measures
the machine's fp32 matmul peak in the same run, so every ratio compares numbers from one run on one machine.
Writes benchmarks/results/speed_cpu.{md,json}, or gpu_<card>.{md,json} (``--results`` picks the folder).

"Baseline" is the straightforward eager implementation: timm's default (explicit) window attention, NCHW
tensors, glibc's default allocator settings, and for training a loss read back to the host every step and images
decoded from TIFF and augmented for every crop. "csunet" is what the package does: SDPA attention,
channels-last convolutions, malloc keeping freed memory, no per-step host sync, decoded images cached.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
MODEL = {"encoder": "resnet50", "img_size": 512, "window_size": 8, "depths": "intermediate", "num_classes": 3}
TILE = 512


# ---------------------------------------------------------------- helpers used inside the case processes


def build_model(baseline: bool, device: str = "cpu") -> torch.nn.Module:
    from csunet.models import create_model

    torch.manual_seed(0)
    model = create_model("cs_unet", **MODEL).to(device)
    if baseline:
        for module in model.modules():
            if hasattr(module, "fused_attn"):
                module.fused_attn = False
    else:
        model.to(memory_format=torch.channels_last)
    return model


def _proc_status_gb(field: str) -> float:
    """A memory line of /proc/self/status in GiB. (getrusage's ru_maxrss would not do: a child process inherits
    its parent's peak across fork and exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_rss_gb() -> float:
    return _proc_status_gb("VmHWM")


def current_rss_gb() -> float:
    return _proc_status_gb("VmRSS")


def synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(step, repeats: int, warmup: int, device: str = "cpu") -> float:
    """Mean seconds per call after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    synchronise(device)
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    synchronise(device)
    return (time.perf_counter() - started) / repeats


def forward_flops(model: torch.nn.Module, batch: int, device: str = "cpu", backward: bool = False) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(batch, 3, TILE, TILE, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x)
        if backward:
            out.float().mean().backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def matmul_peak_gflops(device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """The best square matrix product rate over a few sizes (each the mean of several products)."""
    best = 0.0
    for size in (1024, 2048, 4096) if device == "cpu" else (4096, 8192):
        a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
        seconds = timed(lambda a=a, b=b: a @ b, repeats=max(3, 2**33 // size**3), warmup=2, device=device)
        best = max(best, 2 * size**3 / seconds / 1e9)
    return best


# ---------------------------------------------------------------- CPU cases


def infer_torch(baseline: bool, threads: int | None = None, compile_model: bool = False) -> dict:
    from csunet.utils import keep_freed_memory

    if not baseline:
        keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    model = build_model(baseline).eval()
    x = torch.randn(1, 3, TILE, TILE)
    if not baseline:
        x = x.contiguous(memory_format=torch.channels_last)
    result = {}
    with torch.inference_mode():
        if compile_model:
            started = time.perf_counter()
            model = torch.compile(model)
            model(x)
            result["compile_seconds"] = time.perf_counter() - started
        result["seconds"] = timed(lambda: model(x), repeats=5, warmup=1)
    return result


def infer_onnx(onnx_path: str, threads: int | None = None, batch: int = 1) -> dict:
    from csunet.export import OnnxRuntimeModel

    engine = OnnxRuntimeModel(onnx_path, threads=threads)
    x = torch.randn(batch, 3, TILE, TILE)
    return {"seconds": timed(lambda: engine(x), repeats=5, warmup=1) / batch, "batch": batch}


def infer_openvino(ir_path: str, batch: int = 1) -> dict:
    from csunet.export import OpenVinoModel

    engine = OpenVinoModel(ir_path)
    x = torch.randn(batch, 3, TILE, TILE)
    return {"seconds": timed(lambda: engine(x), repeats=5, warmup=2) / batch, "batch": batch}


def infer_engine(batch: int = 1) -> dict:
    """What the torch engine runs (`csunet.export.engines.torch_engine`): the model channels-last, SDPA attention."""
    from csunet.utils import keep_freed_memory

    keep_freed_memory()
    model = build_model(False).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, TILE, TILE).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        seconds = timed(lambda: model(x), repeats=5, warmup=1)
    return {"seconds": seconds / batch, "batch": batch}


def tiled_to(picture: np.ndarray, size: int) -> np.ndarray:
    """A size x size micrograph made by repeating ``picture`` (2-D, or with channels last) in both directions."""
    reps = -(-size // picture.shape[0])
    return np.tile(picture, (reps, reps) + (1,) * (picture.ndim - 2))[:size, :size]


def folder(
    engine_path: str,
    engine: str,
    images: int,
    work: str,
    size: int = TILE,
    batch_size: int = 4,
    device: str = "cpu",
) -> dict:
    """`predict` over a folder of ``images`` size x size micrographs (the sample's training images, repeated, each
    tiled to the size), end to end: decoding, tiles, blending, mask and overlay PNGs, the done log."""
    from PIL import Image

    from csunet.data import sample_root
    from csunet.predict import predict

    source = sorted((sample_root() / "train").iterdir())
    inputs = Path(work) / f"folder-{engine}-{size}"
    inputs.mkdir()
    for index in range(images):
        picture = np.asarray(Image.open(source[index % len(source)]))
        Image.fromarray(tiled_to(picture, size)).save(inputs / f"{index:04d}.png")
    out = Path(work) / f"out-{engine}-{size}"
    reset_gpu_peak(device)
    started = time.perf_counter()
    predict(engine_path, [inputs], out, progress=False, engine=engine, batch_size=batch_size, device=device)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds / images,
        "images_per_second": images / seconds,
        "images": images,
        "size": size,
        "peak_gpu_memory_gb": gpu_peak_gb(device),
    }


def train_cpu(baseline: bool, steps: int = 5) -> dict:
    """Training steps at batch 2 on 512 crops of the bundled Super-1 sample, data loading included."""
    from torch.utils.data import DataLoader

    from csunet.data import SegmentationDataset, sample_description
    from csunet.train.augment import train_transform
    from csunet.train.losses import build_loss
    from csunet.utils import keep_freed_memory

    if not baseline:
        keep_freed_memory()
    dataset = SegmentationDataset(
        sample_description(), "train", train_transform("super", TILE), cache=not baseline
    )
    loader = DataLoader(dataset, batch_size=2, shuffle=True, drop_last=True)
    model = build_model(baseline).train()
    loss_fn = build_loss("bce-dice")
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-4)
    batches = iter(())

    def step() -> None:
        nonlocal batches
        try:
            images, masks = next(batches)
        except StopIteration:
            batches = iter(loader)
            images, masks = next(batches)
        if not baseline:
            images = images.contiguous(memory_format=torch.channels_last)
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), masks)
        loss.backward()
        optimiser.step()
        if baseline:
            loss.item()  # the per-step host read a NaN check or a progress bar does

    seconds = timed(step, repeats=steps, warmup=2)
    return {"seconds": seconds, "train_gflop": forward_flops(model, 2, backward=True) / 1e9}


def large_image(size: int, onnx_path: str, out: str) -> dict:
    """Segment one size x size micrograph (the sample tiled) with the ONNX engine and write its mask and overlay."""
    from csunet.data import sample_root
    from csunet.data.io import read_image
    from csunet.export import load_engine
    from csunet.predict import write_outputs
    from csunet.predictor import Predictor

    loaded = load_engine(onnx_path, "onnx")
    tile = read_image(sorted((sample_root() / "test").iterdir())[0])
    image = np.ascontiguousarray(tiled_to(tile, size))
    predictor = Predictor(loaded, overlap=0.5, tta="none", batch_size=4)  # one pass per tile: the engine's speed
    predictor.predict_array(np.tile(tile, (2, 2, 1)))  # the session at full batches
    before = current_rss_gb()
    started = time.perf_counter()
    write_outputs(loaded, f"large{size}", image, predictor.predict_array(image), Path(out))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "megapixels": size * size / 1e6,
        "rss_before_gb": before,
        "peak_rss_gb": peak_rss_gb(),
    }


# ---------------------------------------------------------------- GPU cases


def train_gpu(
    baseline: bool, amp: bool, batch: int, steps: int = 20, compile_model: bool = False, device: str = "cuda"
) -> dict:
    from csunet.train.losses import build_loss

    model = build_model(baseline, device).train()
    loss_fn = build_loss("bce-dice")
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-4, fused=device == "cuda")
    images = torch.randn(batch, 3, TILE, TILE, device=device)
    masks = torch.randint(0, 3, (batch, TILE, TILE), device=device)
    if not baseline:
        images = images.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile_model else model

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device, torch.bfloat16, enabled=amp):
            loss = loss_fn(forward(images), masks)
        loss.backward()
        optimiser.step()
        if baseline:
            loss.item()

    result = {}
    if compile_model:
        started = time.perf_counter()
        step()
        synchronise(device)
        result["compile_seconds"] = time.perf_counter() - started
    reset_gpu_peak(device)
    seconds = timed(step, repeats=steps, warmup=3, device=device)
    result.update(
        seconds=seconds,
        images_per_second=batch / seconds,
        peak_gpu_memory_gb=gpu_peak_gb(device),
        train_gflop=forward_flops(model, batch, device, backward=True) / 1e9,
    )
    return result


def infer_gpu(amp: bool, batch: int, repeats: int = 20, device: str = "cuda") -> dict:
    model = build_model(False, device).eval()
    x = torch.randn(batch, 3, TILE, TILE, device=device).contiguous(memory_format=torch.channels_last)
    reset_gpu_peak(device)
    with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=amp):
        seconds = timed(lambda: model(x), repeats=repeats, warmup=3, device=device)
    return {
        "seconds": seconds,
        "images_per_second": batch / seconds,
        "peak_gpu_memory_gb": gpu_peak_gb(device),
    }


def reset_gpu_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def gpu_peak_gb(device: str) -> float:
    """Peak allocated GPU memory (0 on the CPU, where the GPU cases can be smoke-tested)."""
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0


# ---------------------------------------------------------------- the parent: cases, tables


def cpu_cases(onnx_path: str, work: str, compile_model: bool, images: int) -> dict[str, tuple[str, dict]]:
    fp32, int8 = str(Path(onnx_path).with_suffix(".openvino.xml")), str(Path(onnx_path).with_suffix(".int8.xml"))
    cases = {
        "infer eager baseline": ("infer_torch", {"baseline": True}),
        "infer torch, channels-last": ("infer_torch", {"baseline": False}),
        "infer torch engine, batch 4": ("infer_engine", {"batch": 4}),
        "infer torch, 1 thread": ("infer_torch", {"baseline": False, "threads": 1}),
        "infer onnxruntime": ("infer_onnx", {"onnx_path": onnx_path}),
        "infer onnxruntime, batch 4": ("infer_onnx", {"onnx_path": onnx_path, "batch": 4}),
        "infer onnxruntime, 1 thread": ("infer_onnx", {"onnx_path": onnx_path, "threads": 1}),
        "infer openvino fp32": ("infer_openvino", {"ir_path": fp32}),
        "infer openvino fp32, batch 4": ("infer_openvino", {"ir_path": fp32, "batch": 4}),
        "infer openvino int8": ("infer_openvino", {"ir_path": int8}),
        "infer openvino int8, batch 4": ("infer_openvino", {"ir_path": int8, "batch": 4}),
        f"folder of {images}, onnx": (
            "folder",
            {"engine_path": onnx_path, "engine": "onnx", "images": images, "work": work},
        ),
        f"folder of {images}, openvino": (
            "folder",
            {"engine_path": fp32, "engine": "openvino", "images": images, "work": work},
        ),
        f"folder of {images}, openvino-int8": (
            "folder",
            {"engine_path": int8, "engine": "openvino-int8", "images": images, "work": work},
        ),
        "train eager baseline": ("train_cpu", {"baseline": True}),
        "train csunet": ("train_cpu", {"baseline": False}),
        "large 512": ("large_image", {"size": 512, "onnx_path": onnx_path, "out": work}),
        "large 2048": ("large_image", {"size": 2048, "onnx_path": onnx_path, "out": work}),
        "large 4096": ("large_image", {"size": 4096, "onnx_path": onnx_path, "out": work}),
    }
    if compile_model:
        cases["infer torch.compile"] = ("infer_torch", {"baseline": False, "compile_model": True})
    return cases


def gpu_cases(compile_model: bool, checkpoint: str, work: str, images: int) -> dict[str, tuple[str, dict]]:
    predict_case = {"engine_path": checkpoint, "engine": "torch", "work": work, "batch_size": 16, "device": "cuda"}
    cases = {
        "train fp32, batch 8": ("train_gpu", {"baseline": False, "amp": False, "batch": 8}),
        "train bf16 AMP baseline, batch 8": ("train_gpu", {"baseline": True, "amp": True, "batch": 8}),
        "train bf16 AMP, batch 8": ("train_gpu", {"baseline": False, "amp": True, "batch": 8}),
        "infer fp32, batch 16": ("infer_gpu", {"amp": False, "batch": 16}),
        "infer bf16 AMP, batch 16": ("infer_gpu", {"amp": True, "batch": 16}),
        f"predict folder of {images} x 512^2, bf16, batch 16": ("folder", {**predict_case, "images": images}),
        f"predict folder of {images // 4} x 2048^2, bf16, batch 16": (
            "folder",
            {**predict_case, "images": images // 4, "size": 2048},
        ),
    }
    if compile_model:
        cases["train bf16 AMP + torch.compile, batch 8"] = (
            "train_gpu",
            {"baseline": False, "amp": True, "batch": 8, "compile_model": True},
        )
    return cases


ENGINE_META = {
    "classes": ["matrix", "secondary", "tertiary"],
    "colours": [[0, 0, 0], [255, 0, 0], [0, 0, 255]],
    "channels": 3,
    "tile_size": TILE,
    "activation": "sigmoid",
    "normalisation": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}
"""What a checkpoint or export of the benchmark's random-weight model says about itself."""


def random_checkpoint(path: Path) -> str:
    """The benchmark's model saved as a training checkpoint, for `predict` with the torch engine."""
    settings = {key: value for key, value in MODEL.items() if key != "num_classes"}
    meta = {**ENGINE_META, "model": "cs_unet", "model_settings": settings, "out_channels": MODEL["num_classes"]}
    weights = {f"model.{key}": value.contiguous() for key, value in build_model(False).state_dict().items()}
    torch.save({"csunet": meta, "state_dict": weights}, path)
    return str(path)


def quantise_for_speed(onnx_path: str, tiles: int = 32) -> None:
    """OpenVINO fp32 and int8 files beside ``onnx_path``. The weights are random, so int8 is calibrated on tiles of
    the sample for realistic activation ranges, and its accuracy means nothing here: `csunet export --int8` checks
    that on trained models (benchmarks/int8_accuracy.py)."""
    import nncf
    import openvino as ov

    from csunet.data import SegmentationDataset, sample_description
    from csunet.data.transforms import eval_transform
    from csunet.export import ensure_openvino
    from csunet.export.int8 import calibration_tiles, quantisation_settings
    from csunet.export.openvino import read_ir_metadata, save_ir, write_ir_metadata

    fp32 = ensure_openvino(onnx_path)[0]
    model = ov.Core().read_model(str(fp32))
    metadata = read_ir_metadata(model)
    dataset = SegmentationDataset(sample_description(), "train", eval_transform("super"))
    calibration = calibration_tiles(dataset, TILE, tiles)
    quantised = nncf.quantize(
        model, nncf.Dataset(calibration), **quantisation_settings(nncf, model, len(calibration))
    )
    write_ir_metadata(quantised, metadata)
    save_ir(quantised, Path(onnx_path).with_suffix(".int8.xml"))


def run_case(function: str, kwargs: dict, timeout: float) -> dict:
    """One case in a fresh interpreter; its result (or the error it met) as a dict."""
    code = (
        f"import json, benchmarks.speed as s; result = s.{function}(**{kwargs!r}); "
        "result.setdefault('peak_rss_gb', s.peak_rss_gb()); print(json.dumps(result))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=Path(__file__).parent.parent,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def cpu_table(rows: dict[str, dict], figures: dict) -> str:
    peak = figures["matmul_peak_gflops"]
    flop = figures["forward_gflop"]

    def ratio(name: str, base: str) -> str:
        if "seconds" not in rows.get(name, {}) or "seconds" not in rows.get(base, {}):
            return "-"
        return f"{rows[base]['seconds'] / rows[name]['seconds']:.2f}x"

    lines = [
        "# CS-UNet speed on the CPU (resnet50 + intermediate Swin-T, 512 / window 8, fp32)",
        "",
        f"Machine: {figures['machine']}. Command: `python -m benchmarks.speed`. Forward pass: {flop:.1f} GFLOP "
        f"(torch.utils.flop_counter); fp32 matmul peak in this run: {peak:.0f} GFLOP/s"
        f"{peak_note(figures)}.",
        "",
        "| case | s per image / step | speed-up | GFLOP/s | of matmul peak | peak RSS GiB |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        if name.startswith(("large", "folder")):
            continue
        if "error" in row:
            lines.append(f"| {name} | failed: {row['error']} | | | | |")
            continue
        work = row.get("train_gflop", 0) or flop
        base = "train eager baseline" if name.startswith("train") else "infer eager baseline"
        extra = f" (+{row['compile_seconds']:.0f} s compile)" if "compile_seconds" in row else ""
        # a row kept from an earlier run is compared with that run's peak, and only with rows of that run
        row_peak = row.get("earlier_run_peak", peak)
        same_run = ("earlier_run_peak" in row) == ("earlier_run_peak" in rows.get(base, {}))
        label = f"{name} (earlier run, peak {row_peak:.0f})" if "earlier_run_peak" in row else name
        lines.append(
            f"| {label} | {row['seconds']:.3f}{extra} | {ratio(name, base) if same_run else '-'} | "
            f"{work / row['seconds']:.0f} | {work / row['seconds'] / row_peak:.0%} | {row['peak_rss_gb']:.2f} |"
        )
    lines += [
        "",
        "Inference: batch 1 unless the case says otherwise (then seconds per image). int8: OpenVINO static int8",
        "quantised by NNCF (calibrated on 32 tiles of the sample; random weights, so only its speed means anything",
        "here; accuracy on trained models: int8_accuracy.md); its GFLOP/s counts the fp32 model's FLOPs.",
        "Training: batch 2, bce-dice loss, Adam, 512 crops of the bundled Super-1 sample with the",
        "paper's augmentation, data loading included; its GFLOP/s counts forward + backward FLOPs.",
        "",
        "## Folders (`predict` end to end: decode, tiles, blend, mask + overlay PNGs; 512x512 images, overlap 0.5)",
        "",
        "| case | images/s | s per image | peak RSS GiB |",
        "|---|---|---|---|",
    ]
    for name, row in rows.items():
        if name.startswith("folder"):
            if "error" in row:
                lines.append(f"| {name} | failed: {row['error']} | | |")
            else:
                lines.append(f"| {name} | {row['images_per_second']:.2f} | {row['seconds']:.2f} | "
                             f"{row['peak_rss_gb']:.2f} |")  # fmt: skip
    lines += [
        "",
        "A 512x512 image at overlap 0.5 is one tile (images no larger than a tile are not tiled).",
        "",
        "## Large micrographs (ONNX Runtime engine, overlap 0.5, batch 4, mask + overlay written)",
        "",
        "| image | megapixels | seconds | s per megapixel | peak RSS GiB | growth while segmenting GiB |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        if not name.startswith("large"):
            continue
        if "error" in row:
            lines.append(f"| {name} | failed: {row['error']} | | | | |")
            continue
        growth = row["peak_rss_gb"] - row["rss_before_gb"]
        lines.append(
            f"| {name.split()[1]}^2 | {row['megapixels']:.2f} | {row['seconds']:.1f} | "
            f"{row['seconds'] / row['megapixels']:.2f} | {row['peak_rss_gb']:.2f} | {growth:.2f} |"
        )
    small, large = rows.get("large 2048", {}), rows.get("large 4096", {})
    if "seconds" in small and "seconds" in large:
        extra_bytes = (large["peak_rss_gb"] - small["peak_rss_gb"]) * 2**30
        extra_pixels = (large["megapixels"] - small["megapixels"]) * 1e6
        lines += [
            "",
            f"Peak memory grows by {extra_bytes / extra_pixels:.0f} bytes per added pixel from 2048^2 to 4096^2. The "
            f"arrays that must scale with the image hold {ARRAY_BYTES_PER_PIXEL} bytes per pixel while the tiles run: "
            "the decoded image and its normalised copy (float32 x 3 each), the blended logits (float32 x 3 "
            "classes) and the blend weights (float32); mask and overlay are made in strips of rows afterwards, "
            "when the normalised copy is gone. Tiles, model and session are a constant.",
        ]
    return "\n".join(lines) + "\n"


ARRAY_BYTES_PER_PIXEL = 12 + 12 + 12 + 4


def gpu_table(rows: dict[str, dict], figures: dict) -> str:
    lines = [
        f"# CS-UNet speed on {figures['machine'].split(',')[0]} (resnet50 + intermediate Swin-T, 512 / window 8)",
        "",
        f"Machine: {figures['machine']}. Command: `bash benchmarks/gpu.sh`. Forward pass: "
        f"{figures['forward_gflop']:.1f} GFLOP; matmul peak in this run: fp32 {figures['matmul_peak_gflops']:.0f}, "
        f"bf16 {figures['matmul_peak_bf16_gflops']:.0f} GFLOP/s.",
        "",
        "| case | images/s | ms per step / batch | achieved TFLOP/s | peak GPU memory GiB |",
        "|---|---|---|---|---|",
    ]
    folders = {name: row for name, row in rows.items() if name.startswith("predict folder")}
    for name, row in rows.items():
        if "error" in row:
            lines.append(f"| {name} | failed: {row['error']} | | | |")
            continue
        if name in folders:
            continue
        work = row.get("train_gflop") or figures["forward_gflop"] * int(name.rsplit(" ", 1)[1])
        extra = f" (+{row['compile_seconds']:.0f} s compile)" if "compile_seconds" in row else ""
        lines.append(
            f"| {name} | {row['images_per_second']:.1f} | {row['seconds'] * 1000:.0f}{extra} | "
            f"{work / row['seconds'] / 1000:.1f} | {row['peak_gpu_memory_gb']:.1f} |"
        )
    lines += [
        "",
        "Training: bce-dice, fused Adam, synthetic batches on the GPU (data loading excluded). Baseline: explicit",
        "attention, NCHW, loss read back every step. Inference: eval mode, channels-last, SDPA attention.",
    ]
    if folders:
        lines += [
            "",
            "## Folders (`predict` end to end, torch engine with bf16 autocast: decoding and writing PNGs on threads",
            "of their own while the GPU segments; overlap 0.5)",
            "",
            "| case | images/s | s per image | peak GPU memory GiB |",
            "|---|---|---|---|",
        ]
        for name, row in folders.items():
            if "error" not in row:
                lines.append(f"| {name} | {row['images_per_second']:.2f} | {row['seconds']:.3f} | "
                             f"{row['peak_gpu_memory_gb']:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--case-timeout", type=float, default=900)
    parser.add_argument("--images", type=int, default=100, help="images in the folder cases")
    parser.add_argument("--cases", default="", help="only the cases whose names contain one of these (comma list)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent.parent))
    figures = {
        "machine": machine(args.device),
        "matmul_peak_gflops": matmul_peak_gflops(args.device),
        "forward_gflop": forward_flops(build_model(False, args.device).eval(), 1, args.device) / 1e9,
    }
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as work:
        if args.device == "cuda":
            figures["matmul_peak_bf16_gflops"] = matmul_peak_gflops("cuda", torch.bfloat16)
            cases = gpu_cases(args.compile, random_checkpoint(Path(work) / "cs_unet.ckpt"), work, args.images)
        else:
            from csunet.export import export_model

            onnx_path = str(Path(work) / "cs_unet.onnx")
            started = time.perf_counter()
            export_model(build_model(False), onnx_path, TILE, metadata={"csunet": ENGINE_META})
            figures["onnx_export_seconds"] = time.perf_counter() - started
            started = time.perf_counter()
            quantise_for_speed(onnx_path)
            figures["openvino_int8_seconds"] = time.perf_counter() - started
            cases = cpu_cases(onnx_path, work, args.compile, args.images)
        if args.cases:  # a partial rerun: the other rows stay, marked as from the earlier run
            cases = {name: case for name, case in cases.items() if any(p in name for p in args.cases.split(","))}
            rows = kept_rows(args.results, args.device, set(cases))
        for name, (function, kwargs) in cases.items():
            print(f"{name} ...", end=" ", flush=True)
            rows[name] = run_case(function, kwargs, args.case_timeout)
            print(rows[name], flush=True)
            text = write_results(args.results, args.device, rows, figures)  # after each case: a cut run keeps some
    # a shared machine's peak varies with its neighbours: measured again at the end, the higher one counts
    figures["matmul_peak_start_end_gflops"] = [figures["matmul_peak_gflops"], matmul_peak_gflops(args.device)]
    figures["matmul_peak_gflops"] = max(figures["matmul_peak_start_end_gflops"])
    text = write_results(args.results, args.device, rows, figures)
    print(text)


def peak_note(figures: dict) -> str:
    measured = figures.get("matmul_peak_start_end_gflops")
    return f" (the higher of {measured[0]:.0f} at the start and {measured[1]:.0f} at the end)" if measured else ""


def kept_rows(folder: Path, device: str, rerun: set[str]) -> dict[str, dict]:
    """Rows of the earlier results that this run does not measure again, each marked with that run's peak."""
    path = folder / ("speed_cpu.json" if device == "cpu" else "")
    if device != "cpu" or not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    peak = earlier["figures"]["matmul_peak_gflops"]
    return {name: {**row, "earlier_run_peak": row.get("earlier_run_peak", peak)}
            for name, row in earlier["cases"].items() if name not in rerun}  # fmt: skip


def write_results(folder: Path, device: str, rows: dict, figures: dict) -> str:
    from csunet.utils import atomic_write_text

    card = figures["machine"].split(",")[0].lower().replace(" ", "_")
    stem = "speed_cpu" if device == "cpu" else f"gpu_{card}"
    text = cpu_table(rows, figures) if device == "cpu" else gpu_table(rows, figures)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{stem}.md", text)
    atomic_write_text(folder / f"{stem}.json", json.dumps({"figures": figures, "cases": rows}, indent=2) + "\n")
    return text


if __name__ == "__main__":
    main()
