"""`csunet report`: a self-contained HTML page that a real browser (headless Chromium) renders with every picture."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from csunet.cli import app
from csunet.data import sample_root
from csunet.predict import predict
from csunet.report import build_report
from tests.conftest import assert_measured_masks_were_scored

runner = CliRunner()
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const widths = Array.from(document.images, (image) => image.complete ? image.naturalWidth : 0);
  document.body.setAttribute("data-image-widths", widths.join(","));
});
</script>"""


@pytest.fixture(scope="module")
def run_report(tiny_run, tmp_path_factory):
    """The report of a copy of the tiny run without its error panels (a run from before training wrote them) and
    predictions: the report makes them."""
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tiny_run["run_dir"], run)
    shutil.rmtree(run / "figures")
    out = run.parent / "report.html"
    build_report(run, out, say=lambda text: None)
    return run, out


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium is missing: `make test` installs it (tests/ensure_chromium.sh)"
    return path


def test_run_report_is_self_contained(run_report):
    run, out = run_report
    page = out.read_text()
    for section in ("Test metrics", "Training curves", "Test images", "Measurements", "Configuration"):
        assert f"<h2>{section}" in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) >= 4 + 2 + 1  # four test panels, two curves, at least one histogram
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert "http://" not in page and "https://" not in page
    assert (run / "figures").is_dir() and (run / "predictions" / "predictions.json").is_file()
    assert (run / "measurements" / "images.csv").is_file()
    assert_measured_masks_were_scored(run)  # remade at the overlap and flips the run scored its test split with


def test_report_renders_in_headless_chromium_with_every_image_loaded(run_report, tmp_path):
    _, out = run_report
    probe = tmp_path / "probe.html"
    probe.write_text(out.read_text().replace("</body>", IMAGE_PROBE + "</body>"))
    dom = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    found = re.search(r'data-image-widths="([0-9,]*)"', dom)
    assert found, "the page's load handler never ran"
    widths = [int(w) for w in found.group(1).split(",")]
    assert len(widths) == out.read_text().count("<img ") and all(w > 0 for w in widths), widths

    screenshot = tmp_path / "report.png"
    subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--screenshot={screenshot}", "--window-size=1280,1400", out.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    pixels = np.asarray(Image.open(screenshot).convert("L"))
    assert pixels.shape == (1400, 1280)
    assert pixels.std() > 10  # text, tables and pictures, not a blank page


def test_report_of_a_predictions_folder_via_cli(tiny_run, tmp_path):
    predictions = tmp_path / "predictions"
    predict(tiny_run["best_checkpoint"], [sample_root() / "test"], predictions, tta="none", progress=False,
            engine="torch")  # fmt: skip
    result = runner.invoke(app, ["report", str(predictions), "--out", str(tmp_path / "p.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "p.html").read_text()
    assert "<h2>Predictions" in page and "<h2>Measurements" in page
    assert page.count('<img src="data:image/png;base64,') >= 4
    assert (tmp_path / "p_measurements" / "summary.json").is_file()


def test_report_of_something_else_is_refused(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "neither a run folder" in " ".join(result.output.split())
