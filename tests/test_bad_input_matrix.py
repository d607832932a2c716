"""Bad input through the command line, many kinds at once: each is refused with exit code 2 and one line that names
the file or setting and the problem; none is a traceback, none is a silent success. Cases come from a careless or
adversarial user's try (issue 27); the point is the shared roots, so the cases are spread over every command."""

import sqlite3

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from csunet.cli import app
from tests.conftest import TINY_CLI

runner = CliRunner()
TRAIN = ["train", *TINY_CLI, "--max-epochs", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """A folder of broken things, made once: each case names the ones it uses."""
    root = tmp_path_factory.mktemp("bad")
    paths = {"root": root, "missing": root / "missing", "text_ckpt": root / "notes.ckpt", "dir": root / "folder",
             "file": root / "plain.txt"}  # fmt: skip
    paths["text_ckpt"].write_text("not a checkpoint\n")
    paths["dir"].mkdir()
    paths["file"].write_text("x")
    rng = np.random.default_rng(0)

    def dataset(name: str, mask) -> None:
        (root / name / "images").mkdir(parents=True)
        (root / name / "masks").mkdir()
        for i in range(3):
            Image.fromarray((rng.random((48, 48)) * 255).astype(np.uint8)).save(
                root / name / "images" / f"a{i}.png"
            )
            mask(root / name / "masks" / f"a{i}", i)

    dataset("one_class", lambda p, i: Image.fromarray(np.zeros((48, 48), np.uint8)).save(f"{p}.png"))
    dataset("fractions", lambda p, i: tifffile.imwrite(f"{p}.tif", (rng.random((48, 48)) > 0.5) * 0.5))
    see_through = np.zeros((48, 48, 2), np.uint8)
    see_through[..., 1] = 128
    dataset("see_through", lambda p, i: Image.fromarray(see_through, "LA").save(f"{p}.png"))
    (root / "float_table.yaml").write_text("name: f\nclasses:\n  matrix: 0.0\n  phase: 1.5\nimages: i\nmasks: m\n")
    (root / "latin.yaml").write_bytes("name: m\xe9tal\nclasses: [a, b]\nimages: i\nmasks: m\n".encode("latin-1"))
    (root / "twice.yaml").write_text("name: t\nclasses: [a, b]\nimages: i\nimages: j\nmasks: m\n")
    (root / "grey").mkdir()
    for i in range(2):
        Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(root / "grey" / f"g{i}.png")
    (root / "colour").mkdir()
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(root / "colour" / "c_mask.png")
    (root / "masks").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(root / "masks" / "a_mask.png")
    (root / "empty").mkdir()
    with sqlite3.connect(root / "other.sqlite") as connection:
        connection.execute("create table notes (text)")
    return paths


def case(*argv: str, says: str, needs_checkpoint: bool = False):
    return pytest.param(argv, says, needs_checkpoint, id=" ".join(argv)[:60])


CASES = [
    # training settings
    case(*TRAIN, "--precision", "8-bit", says="unknown precision '8-bit'"),
    case(*TRAIN, "--accelerator", "tpu", says="unknown accelerator 'tpu'"),
    case(*TRAIN, "--accelerator", "gpu", says="--accelerator gpu"),
    case(*TRAIN, "--devices", "0", says="--devices '0'"),
    case(*TRAIN, "--devices", "two", says="--devices 'two'"),
    case(*TRAIN, "--optimizer", "sgdx", says="unknown optimizer 'sgdx'"),
    case(*TRAIN, "--loss", "l2", says="unknown loss 'l2'"),
    case(*TRAIN, "--schedule", "step", says="unknown schedule 'step'"),
    case(*TRAIN, "--intensity", "clahe", says="unknown intensity standardisation 'clahe'"),
    case(*TRAIN, "--photometric", "strong", says="unknown photometric augmentation 'strong'"),
    case(*TRAIN, "--embed-dim", "0", says="embed_dim 0"),
    case(*TRAIN, "--window", "-2", says="window_size -2"),
    case(*TRAIN, "--tile-size", "16", says="tile_size"),
    case(*TRAIN, "--lr", "nan", says="lr"),
    case(*TRAIN, "--max-minutes", "inf", says="max_minutes"),
    case(*TRAIN, "--seed", "-1", says="seed"),
    case(*TRAIN, "--val-fraction", "1", says="val_fraction"),
    case(*TRAIN, "--class-temperature", "2", says="class_temperature"),
    case(*TRAIN, "--grad-clip", "nan", says="grad_clip"),
    case("train", "--data", "{missing}.yaml", "--recipe", "paper", says="missing.yaml"),
    case("train", "--data", "{root}/float_table.yaml", says="class 'matrix' has mask value 0.0"),
    case("train", "--data", "{root}/latin.yaml", says="not UTF-8 text"),
    case("train", "--task", "super-9", says="super-9"),
    case("train", "--task", "sample", "--model", "unet3d", says="unknown model 'unet3d'"),
    case("train", "--task", "sample", "--recipe", "quick", says="unknown recipe 'quick'"),
    case("train", "--resume", "{missing}", says="missing"),
    case(*TRAIN, "--batch-size", "0", says="batch_size"),
    case(*TRAIN, "--max-epochs", "0", says="max_epochs"),
    case(*TRAIN, "--patience", "0", says="patience"),
    case(*TRAIN, "--crops-per-epoch", "0", says="crops_per_epoch"),
    case(*TRAIN, "--workers", "-1", says="workers"),
    case(*TRAIN, "--val-tiles", "-1", says="val_tiles"),
    case(*TRAIN, "--warmup", "1", says="warmup"),
    case(*TRAIN, "--class-crops", "2", says="class_crops"),
    case(*TRAIN, "--weight-decay", "-1", says="weight_decay"),
    case(*TRAIN, "--max-steps", "-1", says="max_steps"),
    case(*TRAIN, "--fine-tune-lr", "nan", says="fine_tune_lr"),
    case(*TRAIN, "--val-overlap", "0.95", says="val_overlap"),
    case(*TRAIN, "--test-fraction", "1", says="test_fraction"),
    case(*TRAIN, "--augment", "lines", says="unknown augmentation preset 'lines'"),
    case(*TRAIN, "--num-nodes", "0", says="num_nodes"),
    case(*TRAIN, "--schedule", "cosine", "--max-steps", "0", says="the cosine schedule decays over a budget"),
    case(
        *TRAIN,
        "--init-weights",
        "{ckpt}",
        "--swin-weights",
        "swin_t",
        says="leave out --swin-weights",
        needs_checkpoint=True,
    ),
    case(*TRAIN, "--class-weights", "heavy", says="--class-weights"),
    case("train", "--data", "{root}/twice.yaml", says="the key 'images' is given twice"),
    case("data", "init", "{file}", says="plain.txt"),
    case("measure", "{root}/masks", "--kind", "nope=particle", "--out", "{root}/m7", says="--kind names unknown"),
    case("evaluate", "{missing}.ckpt", says="missing.ckpt"),
    case("export", "{missing}.ckpt", says="missing.ckpt"),
    case("report", "{file}", says="plain.txt"),
    case("report", "{root}/empty", says="neither a run folder"),
    case("tables", "{missing}.sqlite", says="missing.sqlite"),
    case("figures", "{root}/other.sqlite", says="other.sqlite"),
    case("benchmark", "merge", "{root}/other.sqlite", "--into", "{root}/merged.sqlite", says="other.sqlite"),
    case("weights", "inspect", "{file}", says="plain.txt"),
    case("weights", "fetch", "nosuch", says="nosuch"),
    case("weights", "import", "{missing}", "resnet50.micronet", says="missing"),
    case("prep", "clean", "{missing}", "{root}/prepped", says="missing"),
    case("pretrain", "{missing}", says="missing"),
    case("models", "--depths", "deep", says="deep"),
    case("predict", "{text_ckpt}", "{missing}", says="missing: no such file or folder"),
    case("predict", "{text_ckpt}", "{root}/grey", "--overlap", "2", "--out", "{root}/p8", says="overlap"),
    case("predict", "{text_ckpt}", "{root}/grey", "--batch-size", "0", "--out", "{root}/p9", says="batch_size"),
    # data
    case("data", "init", "{root}/one_class", says="one class ('matrix')"),
    case("data", "init", "{root}/fractions", says="mask values are fractions"),
    case("data", "init", "{root}/see_through", says="transparency channel"),
    case("data", "init", "{missing}", says="missing: folder does not exist"),
    case("data", "info", "{missing}.yaml", says="missing.yaml"),
    case("data", "info", "{root}/twice.yaml", says="the key 'images' is given twice"),
    case("data", "info", "{root}/float_table.yaml", says="index masks take whole numbers"),
    # measure
    case("measure", "{root}/grey", "--out", "{root}/m1", says="images, not masks of class numbers"),
    case("measure", "{root}/empty", "--out", "{root}/m2", says="folder holds no masks"),
    case("measure", "{root}/colour", "--out", "{root}/m3", says="c_mask.png: a 3-D array"),
    case("measure", "{root}/masks", "--pixel-size", "inf", "--out", "{root}/m4", says="pixel size"),
    case("measure", "{root}/masks", "--pixel-size", "-1", "--out", "{root}/m5", says="pixel size"),
    case("measure", "{root}/masks", "--out", "{file}", says="plain.txt: cannot write the measurements folder"),
    case(
        "measure", "{root}/masks", "--kind", "class_0=blob", "--out", "{root}/m6", says="unknown measurement kinds"
    ),
    case("measure", "{missing}", says="missing: no such file or folder"),
    # models
    case("models", "--window", "0", says="window_size 0"),
    case("models", "--classes", "0", says="0 classes"),
    case("models", "--img-size", "100", says="img_size 100"),
    # checkpoints and what reads them
    case("predict", "{text_ckpt}", "{root}/grey", says="notes.ckpt"),
    case("predict", "{missing}.ckpt", "{root}/grey", says="missing.ckpt"),
    case("evaluate", "{text_ckpt}", says="notes.ckpt"),
    case("export", "{text_ckpt}", says="notes.ckpt"),
    case(
        "predict",
        "{ckpt}",
        "{missing}",
        "--out",
        "{root}/p1",
        says="missing: no such file or folder",
        needs_checkpoint=True,
    ),
    case(
        "predict",
        "{ckpt}",
        "{root}/grey",
        "--shard",
        "²/2",
        "--out",
        "{root}/p2",
        says="--shard '²/2'",
        needs_checkpoint=True,
    ),
    case(
        "predict",
        "{ckpt}",
        "{root}/grey",
        "--shard",
        "3/2",
        "--out",
        "{root}/p3",
        says="K must be between 1 and N",
        needs_checkpoint=True,
    ),
    case(
        "predict",
        "{ckpt}",
        "{root}/grey",
        "--overlap",
        "nan",
        "--out",
        "{root}/p4",
        says="overlap",
        needs_checkpoint=True,
    ),
    case(
        "predict",
        "{ckpt}",
        "{root}/grey",
        "--mask-format",
        "jpg",
        "--out",
        "{root}/p5",
        says="unknown mask format 'jpg'",
        needs_checkpoint=True,
    ),
    case(
        "predict",
        "{ckpt}",
        "{root}/grey",
        "--engine",
        "torch",
        "--cleanup",
        "holes.nothing=3",
        "--out",
        "{root}/p6",
        says="--cleanup 'holes.nothing=3'",
        needs_checkpoint=True,
    ),
    case(
        "predict",
        "{ckpt}",
        "{root}/grey",
        "--out",
        "{root}/grey",
        says="the folder of the input",
        needs_checkpoint=True,
    ),
    case("evaluate", "{ckpt}", "--split", "holdout", says="no split 'holdout'", needs_checkpoint=True),
    case("evaluate", "{ckpt}", "--overlap", "nan", says="overlap", needs_checkpoint=True),
    case("evaluate", "{ckpt}", "--cleanup", "small_regions.tertiary=0", says="at least 1", needs_checkpoint=True),
    case(
        "export", "{ckpt}", "--out", "{dir}", says="folder: a folder, where the ONNX model", needs_checkpoint=True
    ),
    case("report", "{run}", "--out", "{dir}", says="folder: a folder, where the report", needs_checkpoint=True),
    case("report", "{missing}", says="missing"),
    # results databases
    case("tables", "{root}/other.sqlite", says="other.sqlite"),
    case("benchmark", "--grid", "{missing}.yaml", "--db", "{root}/g.sqlite", "--shard", "²/2", says="²/2"),
]


@pytest.mark.parametrize(("argv", "says", "needs_checkpoint"), CASES)
def test_bad_input_is_refused_by_name(files, request, argv, says, needs_checkpoint):
    names = {key: str(value) for key, value in files.items()}
    if needs_checkpoint:
        run = request.getfixturevalue("tiny_run")
        names |= {"ckpt": run["best_checkpoint"], "run": run["run_dir"]}
    filled = [part.format(**names) for part in argv]
    before = sorted(p.relative_to(files["root"]) for p in files["root"].rglob("*"))
    result = runner.invoke(app, filled, terminal_width=200)
    output = " ".join(result.output.split())
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output[-1500:]}"
    assert "Traceback" not in result.output and "unexpected error" not in output
    assert output.startswith("error:") or "error:" in output, output
    assert says in output, output
    after = sorted(p.relative_to(files["root"]) for p in files["root"].rglob("*"))
    assert [p for p in after if p not in before and not str(p).startswith("m")] == []  # nothing left behind


def test_the_matrix_spans_every_command():
    commands = {param.values[0][0] for param in CASES}
    assert {"train", "data", "measure", "models", "predict", "evaluate", "export", "report", "tables", "figures",
            "benchmark", "weights", "prep", "pretrain"} <= commands  # fmt: skip
    assert len(CASES) >= 100
