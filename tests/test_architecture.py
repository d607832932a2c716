"""The package's layers point one way: cli -> verbs -> (models, weights, data, metrics, inference, ...); nothing
below imports from above, and no module imports a private name of another package. Read from the source with
``ast``, so a lazy import inside a function counts too."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "csunet"
VERBS = {"train", "evaluate", "predict", "measure", "report", "experiments", "pretrain", "demo", "export"}
LOWER = {"models", "weights", "data", "metrics", "inference", "checkpoint", "runs", "render", "utils", "errors",
         "doctor", "prediction_folder", "morphometry", "cleanup", "sharding", "scoring", "predictor",
         "interchange", "hardware"}  # fmt: skip
TOP = {"cli", "__main__", "napari_plugin"}
"""The command line and the napari plugin: both front ends over the verbs."""


def layer(module: str) -> str:
    part = module.split(".")[1] if module.count(".") else "__init__"
    return "cli" if part in TOP else "verb" if part in VERBS else "lower" if part in LOWER else part


def imports() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in SRC.rglob("*.py"):
        module = "csunet." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("csunet"):
                found.append((module.removesuffix(".__init__"), node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                found += [(module, a.name, []) for a in node.names if a.name.startswith("csunet")]
    return found


def test_every_module_has_a_layer():
    assert {layer(source) for source, _, _ in imports()} <= {"cli", "verb", "lower", "__init__"}


@pytest.mark.parametrize("low", ["lower"])
def test_nothing_below_imports_from_above(low):
    wrong = [
        f"{source} imports {target}"
        for source, target, _ in imports()
        if layer(source) == low and layer(target) in ("verb", "cli")
    ]
    assert wrong == []


def test_the_library_logs_and_only_the_front_ends_print():
    """Verbs and building blocks say what they decide through ``logging``; the command line shows it
    (``csunet.cli.common.shown_log``), and a script or notebook chooses for itself."""
    printing = []
    for path in SRC.rglob("*.py"):
        module = "csunet." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        if layer(module) in ("verb", "lower"):
            printing += [f"{module}:{node.lineno}" for node in ast.walk(ast.parse(path.read_text()))
                         if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"]  # fmt: skip
    assert printing == []


def test_verbs_never_import_the_cli():
    assert [f"{s} imports {t}" for s, t, _ in imports() if layer(s) == "verb" and layer(t) == "cli"] == []


def test_no_private_names_across_packages():
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    wrong = [
        f"{source} imports {name} from {target}"
        for source, target, names in imports()
        for name in names
        if name.startswith("_") and package(source) != package(target)
    ]
    assert wrong == []


def test_one_cnn_encoder_factory():
    users = [path.name for path in (SRC / "models").glob("*.py") if "get_encoder(" in path.read_text()]
    assert users == ["encoders.py"]


VERB_IMPORTS = {("train", "evaluate"), ("report", "predict"), ("report", "measure"), ("report", "evaluate"),
                ("report", "train"), ("evaluate", "export"), ("predict", "export"), ("experiments", "train"),
                ("pretrain", "train"), ("demo", "train"), ("demo", "predict"),
                ("demo", "report")}  # fmt: skip
"""Verb -> verb imports, each with its reason in the README's Architecture section."""


def test_verbs_import_verbs_only_where_the_readme_says_why():
    found = {(s.split(".")[1], t.split(".")[1]) for s, t, _ in imports()
             if layer(s) == "verb" and layer(t) == "verb" and s.split(".")[1] != t.split(".")[1]}  # fmt: skip
    assert found - VERB_IMPORTS == set()
    readme = (SRC.parents[1] / "README.md").read_text()
    architecture = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    for source, target in VERB_IMPORTS:
        assert f"`{source}`" in architecture and f"`{target}`" in architecture, (source, target)


def test_every_command_answers_help():
    from typer.main import get_command
    from typer.testing import CliRunner

    from csunet.cli import app

    root = get_command(app)
    paths = [[name] for name in root.commands]
    paths += [[name, sub] for name, group in root.commands.items() for sub in getattr(group, "commands", {})]
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output[-500:])
    assert len(paths) >= 20
