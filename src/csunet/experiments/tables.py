"""The paper's tables from a results database: Table 4 (best IoU per task per model family), Tables 5-7 (mean IoU
by weights source for UNet/UNet++, the transformer models and CS-UNet), Table 8 (mean IoU by algorithm).

Values are NASA's test IoU in percent; every cell says how many runs are behind it. The authors' best CS-UNet
numbers (SPEC 5) stand beside ours in Table 4. Markdown, CSV and LaTeX.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass

from csunet.experiments.grid import CNN_MODELS, TRANSFORMER_MODELS

FAMILIES = {"UNet/UNet++": CNN_MODELS, "transformer models": TRANSFORMER_MODELS, "CS-UNet": ("cs_unet",)}
TASK_ORDER = ["super-1", "super-2", "super-3", "super-4", "ebc-1", "ebc-2", "ebc-3"]
PAPER_BEST = {  # the authors' best CS-UNet IoU per task, % (SPEC 5): ImageNet-pretrained, microscopy-pretrained
    "super-1": (96.22, 96.43), "super-2": (96.03, 96.06), "super-3": (87.01, 93.5), "super-4": (78.89, 82.13),
    "ebc-1": (98.0, 97.66), "ebc-2": (92.0, 92.82), "ebc-3": (61.74, 70.46),
}  # fmt: skip


@dataclass
class Table:
    title: str
    row_label: str
    columns: list[str]
    rows: list[tuple[str, list[tuple[float | None, int]]]]  # (label, [(value, runs behind it)])


def _task_key(task: str) -> tuple[int, str]:
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task)


def _aggregate(rows: list[dict], row_of, column_of, columns: list[str], how) -> list[tuple[str, list]]:
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        column = column_of(row)
        if column is not None and row.get("nasa_iou") is not None:
            groups[(row_of(row), column)].append(100 * row["nasa_iou"])
    labels = sorted({r for r, _ in groups}, key=_task_key)
    return [(label, [(how(groups[(label, c)]) if groups[(label, c)] else None, len(groups[(label, c)]))
                     for c in columns]) for label in labels]  # fmt: skip


def _family(model: str) -> str | None:
    return next((name for name, members in FAMILIES.items() if model in members), None)


def table4(rows: list[dict]) -> Table:
    columns = list(FAMILIES)
    body = _aggregate(rows, lambda r: r["task"], lambda r: _family(r["model"]), columns, max)
    body = [(task, cells + [(PAPER_BEST.get(task, (None, None))[i], 0) for i in (0, 1)]) for task, cells in body]
    return Table("Table 4: best test IoU (%) per task", "task",
                 columns + ["paper CS-UNet (ImageNet)", "paper CS-UNet (microscopy)"], body)  # fmt: skip


def table_by_weights(rows: list[dict], family: str, number: int) -> Table:
    members = [r for r in rows if r["model"] in FAMILIES[family]]
    sources = sorted({r["weights"] for r in members})
    body = _aggregate(members, lambda r: r["task"], lambda r: r["weights"], sources, lambda v: sum(v) / len(v))
    return Table(f"Table {number}: mean test IoU (%) of {family} by weights source", "task", sources, body)


def table8(rows: list[dict]) -> Table:
    models = sorted({r["model"] for r in rows})
    body = _aggregate(rows, lambda r: r["task"], lambda r: r["model"], models, lambda v: sum(v) / len(v))
    return Table("Table 8: mean test IoU (%) by algorithm", "task", models, body)


def paper_tables(rows: list[dict]) -> list[Table]:
    return [table4(rows), table_by_weights(rows, "UNet/UNet++", 5), table_by_weights(rows, "transformer models", 6),
            table_by_weights(rows, "CS-UNet", 7), table8(rows)]  # fmt: skip


def _cell(value: float | None, runs: int) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if runs == 0 else f"{value:.2f} ({runs})"


def to_markdown(table: Table) -> str:
    lines = [f"### {table.title}", "", "cells: IoU % (number of runs); paper columns: the authors' numbers", ""]
    lines.append("| " + " | ".join([table.row_label, *table.columns]) + " |")
    lines.append("|" + "---|" * (len(table.columns) + 1))
    lines += ["| " + " | ".join([label, *(_cell(*c) for c in cells)]) + " |" for label, cells in table.rows]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([table.row_label] + [f"{c} {part}" for c in table.columns for part in ("iou", "runs")])
    for label, cells in table.rows:
        writer.writerow([label] + [x for v, n in cells for x in ("" if v is None else round(v, 4), n)])
    return buffer.getvalue()


def to_latex(table: Table) -> str:
    escape = str.maketrans({"_": r"\_", "%": r"\%", "&": r"\&"})
    head = " & ".join([table.row_label, *table.columns]).translate(escape)
    body = [
        " & ".join([label.translate(escape), *(_cell(*c) for c in cells)]) + r" \\" for label, cells in table.rows
    ]
    return "\n".join([
        r"\begin{table}[t]", r"\centering", rf"\caption{{{table.title.translate(escape)}}}",
        rf"\begin{{tabular}}{{l{'r' * len(table.columns)}}}", r"\hline", head + r" \\", r"\hline", *body,
        r"\hline", r"\end{tabular}", r"\end{table}",
    ]) + "\n"  # fmt: skip
