"""int8 on trained models: `csunet export --int8` on each checkpoint (calibration on its training images, accuracy
check on its validation images), then NASA IoU of the fp32 and int8 OpenVINO engines on the test split and their
time per tile, beside plain eager PyTorch.

    python -m benchmarks.int8_accuracy RUN/checkpoints/best.ckpt [MORE.ckpt ...]

Writes benchmarks/results/int8_accuracy.md/.json; names the CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.train_cpu import cpu_name
from csunet.checkpoint import load_checkpoint
from csunet.evaluate import evaluate
from csunet.export import load_engine
from csunet.export.int8 import Int8Refused, export_int8
from csunet.utils import atomic_write_text

RESULTS = Path(__file__).parent / "results"


def per_tile_seconds(model, tile: int, repeats: int = 20) -> float:
    x = torch.randn(1, 3, tile, tile)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        started = time.perf_counter()
        for _ in range(repeats):
            model(x)
    return (time.perf_counter() - started) / repeats


def measure(checkpoint: Path) -> dict:
    with tempfile.TemporaryDirectory() as work:  # the exports go beside a copy, not beside the user's run
        copy = Path(work) / checkpoint.name
        shutil.copy2(checkpoint, copy)
        row = {"checkpoint": str(checkpoint)}
        started = time.perf_counter()
        try:
            exported = export_int8(copy, progress=False)
            row.update(accepted=True, **{k: exported[k] for k in ("fp32_nasa_iou", "int8_nasa_iou", "method")})
        except Int8Refused as refused:
            row.update(accepted=False, refusal=str(refused).replace(str(copy), checkpoint.name))
        row["export_seconds"] = time.perf_counter() - started
        plain = load_checkpoint(copy)
        tile = plain.meta.tile_size
        row["tile"] = tile
        row["eager_seconds"] = per_tile_seconds(plain.model.eval(), tile)
        for engine in ("openvino", "openvino-int8") if row["accepted"] else ("openvino",):
            test = evaluate(copy, split="test", progress=False, engine=engine)
            row[f"{engine}_test_nasa_iou"] = test["nasa_iou"]
            row[f"{engine}_seconds"] = per_tile_seconds(load_engine(copy, engine).model, tile)
        row["data"] = test["data"]
    return row


def table(rows: list[dict], machine: str) -> str:
    lines = [
        "# int8 on trained models: accuracy check and speed",
        "",
        f"CPU: {machine}. Command: `python -m benchmarks.int8_accuracy CHECKPOINT ...`. Each checkpoint goes through",
        "`csunet export --int8` (NNCF static int8, the convolutions reading the image kept in fp32, calibrated on up",
        "to 300 tiles of its training images; kept only if its validation NASA IoU is within 0.005 of fp32's). Test",
        "NASA IoU with the OpenVINO engines; time per tile at batch 1 (eager: the checkpoint's model in plain",
        "PyTorch, NCHW, no folding). Small tiles (128) leave int8 less to gain than the 512 tiles of speed_cpu.md.",
        "",
        "| data | tile | val NASA IoU fp32 / int8 | accepted | test NASA IoU fp32 / int8 | s per tile eager / "
        "openvino fp32 / int8 | int8 vs eager |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["accepted"]:
            check = f"{row['fp32_nasa_iou']:.4f} / {row['int8_nasa_iou']:.4f}"
            test = f"{row['openvino_test_nasa_iou']:.4f} / {row['openvino-int8_test_nasa_iou']:.4f}"
            times = (
                f"{row['eager_seconds']:.4f} / {row['openvino_seconds']:.4f} / {row['openvino-int8_seconds']:.4f}"
            )
            ratio = f"{row['eager_seconds'] / row['openvino-int8_seconds']:.2f}x"
        else:
            check, test = row["refusal"], f"{row['openvino_test_nasa_iou']:.4f} / -"
            times, ratio = f"{row['eager_seconds']:.4f} / {row['openvino_seconds']:.4f} / -", "-"
        lines.append(
            f"| {row['data']} | {row['tile']} | {check} | {'yes' if row['accepted'] else 'no'} | {test} | {times} | "
            f"{ratio} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    args = parser.parse_args(argv)
    machine = cpu_name()
    rows = []
    for checkpoint in args.checkpoints:
        rows.append(measure(checkpoint))
        print(rows[-1], flush=True)
        atomic_write_text(RESULTS / "int8_accuracy.md", table(rows, machine))
        atomic_write_text(RESULTS / "int8_accuracy.json", json.dumps({"machine": machine, "rows": rows}, indent=1))
    print(table(rows, machine))


if __name__ == "__main__":
    main()
