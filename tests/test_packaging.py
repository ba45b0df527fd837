"""How the kit installs: the core (train, evaluate, predict) needs only pyproject.toml's dependencies and each
extra's command names the extra when its package is missing; requirements.txt is the core plus ``[dev]``;
a wheel (``pip install .``, not ``-e``) carries the committed split files; the repository's address is
written once (``[project.urls]``) and README.md and the notebooks use exactly it."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agegender_tf import cli, paths
from agegender_tf.errors import install_hint

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
EXTRAS = PROJECT["optional-dependencies"]
# The modules that may import an extra's packages (each says which extra when they are missing).
EXTRA_MODULES = {"agegender_tf/serving/app.py": "app", "agegender_tf/serving/export.py": "export"}
# Packages a module imports that come with a dependency rather than being one: import name -> dependency.
BROUGHT_BY = {"absl": "tensorflow", "altair": "streamlit"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (``scikit-learn>=1.5`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def _flatten(requirements: list[str]) -> list[str]:
    """``requirements`` with the kit's own extras (``agegender-tf[app,export]``) replaced by their contents."""
    flat = []
    for requirement in requirements:
        if _name(requirement) == _name(PROJECT["name"]):
            extras = re.search(r"\[(.*)\]", requirement).group(1).split(",")
            flat += _flatten([r for extra in extras for r in EXTRAS[extra.strip()]])
        else:
            flat.append(requirement)
    return list(dict.fromkeys(flat))


# ------------------------------------------------------------------------------------ what installs what
def test_requirements_txt_is_the_core_and_the_dev_extra():
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    listed = [line.replace(" ", "") for line in lines if line]
    expected = [r.replace(" ", "") for r in _flatten(PROJECT["dependencies"] + EXTRAS["dev"])]
    assert sorted(listed) == sorted(expected), "requirements.txt differs from pyproject.toml's core + [dev]"


def test_extras_name_what_each_command_needs():
    assert {"app", "export", "notebooks", "dev", "all"} <= set(EXTRAS)
    core = {_name(r) for r in PROJECT["dependencies"]}
    heavy = {"streamlit", "tf2onnx", "onnx", "onnxruntime", "jupyter", "jupyterlab", "playwright", "pytest", "ruff"}
    assert not core & heavy, f"the core installs {core & heavy}"
    dev = {_name(r) for r in _flatten(EXTRAS["dev"])}
    assert {_name(r) for r in _flatten(EXTRAS["app"] + EXTRAS["export"])} <= dev
    assert {"pytest", "ruff", "playwright", "nbclient", "nbformat", "ipykernel"} <= dev
    everything = {_name(r) for r in _flatten(EXTRAS["all"])}
    assert everything == {_name(r) for extra in ("app", "export", "notebooks", "dev") for r in _flatten(EXTRAS[extra])}


def _third_party_imports(path: Path) -> set[str]:
    """The top-level names of the packages ``path`` imports (at the top or inside a function), stdlib left out."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "agegender_tf"}


def test_every_module_imports_only_the_core_or_its_own_extra():
    distributions = importlib.metadata.packages_distributions()
    core = {_name(r) for r in PROJECT["dependencies"]}
    wrong = []
    for path in sorted((REPO / "agegender_tf").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        allowed = core | {_name(r) for r in EXTRAS.get(EXTRA_MODULES.get(relative, ""), [])}
        for module in sorted(_third_party_imports(path)):
            if module in BROUGHT_BY:
                owners = {BROUGHT_BY[module]}
            else:
                owners = {_name(d) for d in distributions.get(module, [])}
                assert owners, f"{relative} imports {module}, which is not installed here"
            if not owners & allowed:
                wrong.append(f"{relative}: {module} ({', '.join(sorted(owners))})")
    assert not wrong, "imports outside the core and the module's extra:\n" + "\n".join(wrong)


def test_package_data_lists_only_files_that_exist():
    for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        folder = REPO.joinpath(*package.split("."))
        for pattern in patterns:
            assert list(folder.glob(pattern)), f"package-data {package}: {pattern} matches no file"


# ------------------------------------------------------------- a missing extra: one line naming it, exit 2
def _one_error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_the_app_without_streamlit_names_the_app_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "streamlit", None)  # find_spec: None, as when not installed
    assert cli.main(["app"]) == 2
    assert _one_error_line(capsys) == f"error: the web app needs streamlit: {install_hint('app')}"


def test_onnx_export_without_tf2onnx_names_the_export_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    assert cli.main(["export", "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert _one_error_line(capsys) == f"error: ONNX export needs tf2onnx: {install_hint('export')}"
    assert not list(tmp_path.iterdir())


def test_running_an_onnx_file_without_onnxruntime_names_the_export_extra(monkeypatch, tmp_path):
    from agegender_tf.serving import export

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(export.ExportUnavailable) as caught:
        export.load_exported(tmp_path / "m.onnx", "onnx")
    assert str(caught.value) == f"running an ONNX model needs onnxruntime: {install_hint('export')}"


def test_tflite_files_run_without_litert_and_export_accuracy_names_the_extra_when_nothing_can(monkeypatch, capsys,
                                                                                                 tmp_path):
    import tensorflow as tf

    from agegender_tf.serving import export

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    assert export.tflite_interpreter() is tf.lite.Interpreter  # TensorFlow's own, where it still has one
    monkeypatch.delattr(tf.lite, "Interpreter")
    assert cli.main(["export-accuracy", "--out", str(tmp_path / "exports")]) == 2
    # LiteRT is a core dependency (the BlazeFace detector runs on it)
    assert _one_error_line(capsys) == ("error: running a TFLite file needs ai-edge-litert: "
                                       "pip install 'ai-edge-litert>=2.0,<3'")


def test_executing_a_notebook_without_nbclient_names_the_notebooks_extra(monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("execute", REPO / "notebooks" / "execute.py")
    execute = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(execute)
    monkeypatch.setitem(sys.modules, "nbclient", None)
    assert execute.main(["gra_net"]) == 2
    assert _one_error_line(capsys) == ("error: executing a notebook needs nbformat, nbclient and ipykernel: "
                                       f"{install_hint('notebooks')}")


# ------------------------------------------------------------------------- the wheel and its split files
def test_a_clone_reads_its_own_data_manifests():
    assert paths.manifests_dir() == REPO / "data_manifests"


# What a wheel is built from (pyproject.toml, setup.py and MANIFEST.in name no other file).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "agegender_tf", "data_manifests")


@pytest.mark.slow  # 15 s on an idle 2-core CPU, 50 s beside a training run (pip's isolated build environment)
def test_a_built_wheel_carries_the_committed_splits(tmp_path):
    """``pip wheel .`` then ``pip install --target``: run from outside the checkout, with only that folder on
    the path, the kit reads the UTKFace split packaged in the wheel, equal to the checkout's."""
    source, wheels, target = tmp_path / "source", tmp_path / "wheels", tmp_path / "site"
    source.mkdir()
    for name in BUILD_INPUTS:  # a copy: pip builds in the source folder (build/, *.egg-info)
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    built = subprocess.run([*pip, "wheel", str(source), "--no-deps", "-w", str(wheels)], capture_output=True,
                           text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("agegender_tf-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True,
                   capture_output=True)
    script = (
        "import json, agegender_tf\n"
        "from agegender_tf import paths\n"
        "from agegender_tf.data import splits\n"
        "import pandas as pd\n"
        "path = splits.committed_split_path('utkface')\n"
        "manifest = pd.read_csv(path, dtype=str)[['file']]\n"
        "joined = splits.load_committed_split(manifest, 'utkface')\n"
        "files = sorted(p.relative_to(paths.manifests_dir()).as_posix()\n"
        "               for p in paths.manifests_dir().rglob('*') if p.is_file())\n"
        "print(json.dumps({'package': agegender_tf.__file__, 'manifests': str(paths.manifests_dir()),\n"
        "                  'split': str(path), 'counts': joined['split'].value_counts().to_dict(), 'files': files}))\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**env, "PYTHONPATH": str(target)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    packaged = target / "agegender_tf" / "_manifests"
    assert found["package"] == str(target / "agegender_tf" / "__init__.py")
    assert found["manifests"] == str(packaged) and found["split"] == str(packaged / "utkface" / "split.csv")
    import pandas as pd

    committed = pd.read_csv(REPO / "data_manifests" / "utkface" / "split.csv", dtype=str)
    assert found["counts"] == committed["split"].value_counts().to_dict()
    in_checkout = sorted(p.relative_to(REPO / "data_manifests").as_posix()
                         for p in (REPO / "data_manifests").rglob("*") if p.suffix in (".csv", ".md"))
    assert found["files"] == in_checkout


# ---------------------------------------------------------------------- the repository's address, once
REPO_URL = PROJECT["urls"]["Repository"]
REPO_SLUG = REPO_URL.removeprefix("https://github.com/")
ADDRESSES = re.compile(r"(?:github\.com|colab\.research\.google\.com/github)/([\w.-]+/[\w-]+)")


def test_readme_and_every_notebook_use_the_one_repository_url():
    assert REPO_URL.startswith("https://github.com/") and REPO_SLUG.count("/") == 1
    documents = [REPO / "README.md", *sorted((REPO / "notebooks").glob("*.ipynb"))]
    for path in documents:
        text = path.read_text(encoding="utf-8")
        found = ADDRESSES.findall(text)
        assert found, f"{path.name} names no repository"
        assert set(found) == {REPO_SLUG}, f"{path.name} names {sorted(set(found))}, not {REPO_SLUG}"
        if path.suffix == ".ipynb":
            assert f"git clone -q {REPO_URL}.git" in text and f"colab.research.google.com/github/{REPO_SLUG}/" in text
    assert f"git clone -q {REPO_URL}.git" in (REPO / "README.md").read_text(encoding="utf-8")
