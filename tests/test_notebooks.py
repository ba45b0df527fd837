"""The five paper notebooks: built from the template without outputs, and each runs in smoke mode on real data."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from agegender_tf.experiments.presets import PRESETS

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", list(PRESETS))
def test_notebook_is_committed_clean_and_matches_the_template(name):
    import sys

    sys.path.insert(0, str(NOTEBOOKS))
    try:
        from build_notebooks import notebook
    finally:
        sys.path.remove(str(NOTEBOOKS))
    committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(committed)
    assert all(not cell.get("outputs") and not cell.get("execution_count") for cell in committed.cells
               if cell.cell_type == "code"), "commit notebooks without outputs"
    assert [c.source for c in committed.cells] == [c.source for c in notebook(PRESETS[name]).cells], \
        "notebook differs from notebooks/build_notebooks.py: rebuild it"
    tagged = [c for c in committed.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "SMOKE" in tagged[0].source
    text = "\n".join(c.source for c in committed.cells)
    for heading in ("colab-badge", "%pip install", "## Interpretation", "## Paper vs this kit"):
        assert heading in text


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("name", list(PRESETS))
def test_notebook_runs_in_smoke_mode(name, utkface_root, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("AGEGENDER_SMOKE", "1")
    monkeypatch.setenv("AGEGENDER_RUNS", str(tmp_path))
    monkeypatch.setenv("AGEGENDER_DATA", str(utkface_root.parent))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / f"{name}_notebook" / "report.json").exists()
    assert list((tmp_path / f"{name}_notebook" / "figures").glob("*.png"))
