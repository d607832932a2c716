"""Roots of bad-input handling (issue 27): YAML files read one strict way, mask values that are whole numbers, and
the operating system's refusals (disk full, file size limit, a folder where a file goes) as one line, exit 2."""

import errno
import os
import resource
import subprocess
import sys

import numpy as np
import pytest
import typer
from PIL import Image

from csunet.cli.common import handle_errors
from csunet.data import DataError, load_description
from csunet.errors import SettingsError
from csunet.train import TrainConfig


def test_yaml_is_read_strictly_and_named(tmp_path):
    duplicated = tmp_path / "dataset.yaml"
    duplicated.write_text("classes: [a, b]\nimages: i\nmasks: m\nimages: j\n")
    with pytest.raises(
        DataError, match=r"dataset.yaml: not valid YAML .*the key 'images' is given twice \(lines 2 and 4\)"
    ):
        load_description(duplicated)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("classes: [a, b]\nname: m\xe9tal\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.yaml: not UTF-8 text \(byte 0xe9 on line 2\)"):
        load_description(latin)
    config = tmp_path / "config.yaml"
    config.write_text("lr: 0.1\nlr: 0.2\n")
    with pytest.raises(SettingsError, match="the key 'lr' is given twice"):
        TrainConfig.load(config)


@pytest.mark.parametrize(("value", "shown"), [("1.7", "1.7"), ("one", "'one'"), ("-1", "-1")])
def test_mask_values_are_whole_numbers(tmp_path, value, shown):
    description = tmp_path / "dataset.yaml"
    description.write_text(f"classes: [a, b]\nmask: {{values: {{a: 0, b: {value}}}}}\nimages: i\nmasks: m\n")
    with pytest.raises(
        DataError, match=f"the mask value of class 'b' must be a whole number from 0 to 65535, not {shown}"
    ):
        load_description(description)


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "the disk is full"), (errno.EISDIR, "a folder where a file should be"),
     (errno.EACCES, "no permission"), (errno.EFBIG, "a file size limit")],
)  # fmt: skip
def test_the_systems_refusals_are_one_line_naming_the_path(capsys, code, words):
    @handle_errors
    def command():
        raise OSError(code, os.strerror(code), "/results/out/summary.json")

    with pytest.raises(typer.Exit) as exit_info:
        command()
    assert exit_info.value.exit_code == 2
    said = " ".join(capsys.readouterr().out.split())
    assert f"/results/out/summary.json: {os.strerror(code)} ({words}" in said

    @handle_errors
    def bug():
        raise OSError(errno.EBADF, "Bad file descriptor")  # ours, not the user's: the traceback stays

    with pytest.raises(OSError):
        bug()


@pytest.mark.skipif(sys.platform != "linux", reason="file size limits as Linux sets them")
def test_a_write_past_the_file_size_limit_is_one_line(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    mask = np.zeros((200, 200), np.uint8)
    for row in range(10, 190, 20):
        mask[row : row + 8, 10:190:20] = 1
    Image.fromarray(mask).save(masks / "a_mask.png")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    result = subprocess.run(
        [sys.executable, "-m", "csunet.cli", "measure", str(masks), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, preexec_fn=limit, timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, said[-2000:]
    assert "a file size limit was reached" in said and "Traceback" not in said


class Payload:
    """Unpickling runs ``function(*arguments)``."""

    def __init__(self, function, *arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


@pytest.mark.parametrize(
    ("write", "named"),
    [
        (lambda path: __import__("torch").save({"csunet": Payload(os.system, "true")}, path), "posix.system"),
        (lambda path: path.write_bytes(__import__("pickle").dumps({"a": Payload(os.system, "true")}, protocol=4)),
         "posix.system"),
        (lambda path: path.write_bytes(__import__("pickle").dumps(Payload(eval, "1+1"), protocol=2)), "builtins.eval"),
        (lambda path: __import__("torch").save({"x": Payload(subprocess.Popen, ["true"])}, path), "subprocess.Popen"),
    ],
    ids=["torch.save os.system", "plain pickle protocol 4", "pickle protocol 2 eval", "subprocess.Popen"],
)  # fmt: skip
def test_a_checkpoint_that_would_run_code_is_refused_as_such(tmp_path, write, named):
    from csunet.checkpoint import CheckpointError, read_checkpoint

    path = tmp_path / "model.ckpt"
    write(path)
    with pytest.raises(
        CheckpointError, match=rf"model.ckpt: refused: it holds pickled Python objects \({named}\)"
    ):
        read_checkpoint(path)


def test_text_and_truncated_checkpoints_are_called_what_they_are(tmp_path):
    from pathlib import Path

    from csunet.checkpoint import CheckpointError, read_checkpoint

    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.ckpt: not a readable PyTorch checkpoint"):
        read_checkpoint(text)
    whole = (Path(__file__).parent / "fixtures" / "pre_refactor_swin_unet.ckpt").read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(
        CheckpointError, match=r"cut.ckpt: not a readable PyTorch checkpoint \(\w+; corrupt or truncated\)"
    ):
        read_checkpoint(cut)
