"""The five paper notebooks: committed without outputs as the template builds them; each runs headless in
smoke mode on real data with ``notebooks/execute.py`` and shows its figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agegender_tf.experiments.presets import PRESETS
from tests.fixtures import REPO_ROOT, RUN_STEPS

NOTEBOOKS = REPO_ROOT / "notebooks"
FIGURE_TAG = "figure"


def read_notebook(path):
    """``nbformat.read`` (imported here, not at collection: importing nbformat takes a second, in jsonschema)."""
    import nbformat

    return nbformat.read(path, as_version=4)


def text_of(nb) -> str:
    return "\n".join(c.source for c in nb.cells)


@pytest.mark.parametrize("name", list(PRESETS))
def test_notebook_is_committed_clean_and_matches_the_template(name):
    notebook = _notebook_module("build_notebooks").notebook
    import nbformat

    committed = read_notebook(NOTEBOOKS / f"{name}.ipynb")
    nbformat.validate(committed)
    assert all(not cell.get("outputs") and not cell.get("execution_count") for cell in committed.cells
               if cell.cell_type == "code"), "commit notebooks without outputs"
    built = notebook(PRESETS[name])
    assert [(c.source, c.metadata.get("tags")) for c in committed.cells] == \
        [(c.source, c.metadata.get("tags")) for c in built.cells], \
        "notebook differs from notebooks/build_notebooks.py: rebuild it"
    tagged = [c for c in committed.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "SMOKE" in tagged[0].source and "PROFILE = None" in tagged[0].source
    assert "profile=PROFILE" in text_of(committed)
    drawing = [c.source for c in committed.cells if FIGURE_TAG in c.metadata.get("tags", [])]
    assert len(drawing) == 2 and "plt.show()" in drawing[0] and "display(Image" in drawing[1]
    text = text_of(committed)
    for heading in ("colab-badge", "%pip install", "## Interpretation", "## Paper vs this kit"):
        assert heading in text
    # A student steps through the run (tests/experiments/test_steps.py: the same folder as runner.run).
    code = "\n".join(c.source for c in committed.cells if c.cell_type == "code")
    steps = [*RUN_STEPS, "score_run("]
    assert [code.find(step) for step in steps] == sorted(code.find(step) for step in steps) and -1 not in \
        [code.find(step) for step in steps] and "runner.run(" not in code


def test_every_notebook_in_the_folder_is_committed_without_outputs():
    found = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert {p.stem for p in found} >= set(PRESETS)
    for path in found:
        nb = read_notebook(path)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} holds outputs"


@pytest.mark.parametrize("name", list(PRESETS))
def test_the_preamble_starts_tensorflow_quietly_before_anything_imports_it(name):
    """No "failed call to cuInit", oneDNN or cpu_feature_guard lines in a notebook's outputs: the first cell
    that imports anything of the kit or of Keras calls ``import_tensorflow_quietly()`` first."""
    code = [c.source for c in read_notebook(NOTEBOOKS / f"{name}.ipynb").cells if c.cell_type == "code"]
    lines = [line.strip() for cell in code for line in cell.splitlines()]
    quiet = lines.index("agegender_tf.import_tensorflow_quietly()  # TensorFlow without its start-up lines "
                        "(oneDNN, cuInit)")
    loads_tensorflow = [i for i, line in enumerate(lines) if line.startswith(("import keras", "import tensorflow",
                                                                              "from agegender_tf."))]
    assert loads_tensorflow and quiet < min(loads_tensorflow)


def _notebook_module(name):
    """Import ``notebooks/<name>.py`` (build_notebooks, execute) without installing the folder."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, NOTEBOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_execute_injects_parameters_after_the_tagged_cell():
    execute = _notebook_module("execute")
    nb = read_notebook(NOTEBOOKS / "gra_net.ipynb")
    position = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    execute.inject_parameters(nb, {"SMOKE": False, "PROFILE": "cpu", "OUT": "results/gra_net"})
    injected = nb.cells[position + 1]
    assert injected.metadata["tags"] == [execute.INJECTED_TAG]
    assert "SMOKE = False\nPROFILE = 'cpu'\nOUT = 'results/gra_net'" in injected.source
    assert execute.default_paths("gra_net", full=False) == (Path("notebooks/runs/gra_net_smoke"),
                                                            Path("notebooks/runs/gra_net_smoke/notebook.ipynb"))
    assert execute.main(["no_such_notebook"]) == 2


def test_execute_passes_image_size_epochs_and_settings_as_the_notebooks_overrides(monkeypatch, tmp_path):
    """``--image-size``/``--epochs``/``--set`` become the notebook's IMAGE_SIZE/EPOCHS/SETTINGS, which its next
    cell turns into the overrides of ``agegender run --set``, so an executed notebook can repeat such a run
    exactly."""
    execute = _notebook_module("execute")
    executed = {}

    class Client:
        def __init__(self, nb, **kwargs):
            executed["nb"] = nb

        def execute(self):
            pass

    import nbclient

    monkeypatch.setattr(nbclient, "NotebookClient", Client)
    execute.execute("gra_net", full=True, profile="cpu", run_dir=tmp_path, image_size=80, epochs=3,
                    settings=["callbacks.time_limit.minutes=60"])
    injected = next(c for c in executed["nb"].cells if execute.INJECTED_TAG in c.metadata.get("tags", []))
    assert "IMAGE_SIZE = 80\nEPOCHS = 3\nSETTINGS = ['callbacks.time_limit.minutes=60']" in injected.source
    namespace = {}
    exec(injected.source, namespace)
    overrides_cell = next(c for c in executed["nb"].cells if "OVERRIDES = " in c.source)
    overrides_line = next(line for line in overrides_cell.source.splitlines() if line.startswith("OVERRIDES"))
    exec(overrides_line, namespace)
    assert namespace["OVERRIDES"] == ["image_size=80", "epochs=3", "callbacks.time_limit.minutes=60"]
    assert (tmp_path / "notebook.ipynb").exists()


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.background_run("notebook")
def test_notebook_runs_in_smoke_mode_and_draws_its_figures(name, utkface_root, notebook_smoke_runs):
    """``notebooks/execute.py NAME`` in a fresh kernel with Jupyter's inline backend (MPLBACKEND cleared):
    every cell tagged ``figure`` must hold a PNG output, and the run folder its report and figures.
    The runs start in the background at the session's first test (conftest ``background_runs``)."""
    folder, done = notebook_smoke_runs[name].result()
    assert done.returncode == 0, f"{name}: {done.stderr[-3000:]}{_error_outputs(folder / 'executed.ipynb')}"
    assert done.stdout.strip().splitlines()[-1] == "executed notebook written to executed.ipynb"
    executed = read_notebook(folder / "executed.ipynb")
    figure_cells = [c for c in executed.cells if FIGURE_TAG in c.metadata.get("tags", [])]
    assert len(figure_cells) == 2  # augmentation examples, the run's figures
    for cell in figure_cells:
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert images, f"{name}: cell {cell.id} drew no image:\n{cell.source}"
    run = folder / "run"
    report = json.loads((run / "report.json").read_text())
    assert report["preset"] == name and report["protocol"]["smoke"] is True
    figures = sorted((run / "figures").glob("*.png"))
    assert len([o for o in figure_cells[1].outputs if "image/png" in o.get("data", {})]) == len(figures) > 0


def _error_outputs(path: Path) -> str:
    """The tracebacks an executed notebook holds (its failed cell), for a failure message."""
    if not path.exists():
        return ""
    outputs = [o for c in read_notebook(path).cells for o in c.get("outputs", [])]
    return "".join("\n" + "\n".join(o.get("traceback", [])) for o in outputs if o.get("output_type") == "error")
