"""Execute one paper notebook headless and save it with its outputs (figures included).

    python notebooks/execute.py gra_net                       # smoke run -> notebooks/runs/gra_net_smoke/
    python notebooks/execute.py gra_net --full --profile cpu --run-dir results/gra_net
    python notebooks/execute.py cnn_rnn_ensemble --full --profile cpu_wide --image-size 80 --run-dir results/X
    python notebooks/execute.py cnn_rnn_ensemble --full --profile cpu_photos_blazeface \
        --set callbacks.time_limit.minutes=95 --run-dir results/cnn_rnn_ensemble_photos_blazeface

The source notebook stays as committed (no outputs). The values given here are injected in a cell
after its ``parameters`` cell (papermill's convention), the run folder is ``--run-dir`` and the
executed notebook is written to ``--out`` (default: ``<run-dir>/notebook.ipynb``), so a full-scale
result and the notebook that made it sit side by side. Run it from the repository root; paths are
kept as typed, so the executed notebook names no folder of this machine. The kernel draws with
Jupyter's inline backend (``MPLBACKEND`` is cleared for it), as in an interactive session.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

NEEDS = "executing a notebook needs nbformat, nbclient and ipykernel: pip install 'agegender-tf[notebooks]'"
try:
    import nbformat
    from nbformat.v4 import new_code_cell
except ImportError:  # the notebooks extra brings them
    print(f"error: {NEEDS}", file=sys.stderr)
    sys.exit(2)

HERE = Path(__file__).resolve().parent
INJECTED_TAG = "injected-parameters"


def inject_parameters(nb, values: dict):
    """Insert a cell assigning ``values`` right after the tagged ``parameters`` cell; return ``nb``."""
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(tagged)}")
    source = "# Injected by notebooks/execute.py\n" + "\n".join(f"{key} = {value!r}" for key, value in values.items())
    cell = new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    cell["id"] = f"{INJECTED_TAG}"
    nb.cells.insert(tagged[0] + 1, cell)
    return nb


def default_paths(name: str, full: bool, run_dir=None, out=None) -> tuple[Path, Path]:
    """The run folder and the executed notebook's path, defaults filled in."""
    run_dir = Path(run_dir) if run_dir else Path("notebooks", "runs", f"{name}_{'full' if full else 'smoke'}")
    return run_dir, Path(out) if out else run_dir / "notebook.ipynb"


def execute(name: str, *, full: bool = False, profile: str | None = None, run_dir: str | Path | None = None,
            out: str | Path | None = None, seed: int | None = None, data_root: str | None = None,
            image_size: int | None = None, epochs: int | None = None, settings=(), timeout: int | None = None) -> Path:
    """Run ``notebooks/<name>.ipynb`` in a fresh kernel (working directory: the current one); return the
    path of the executed notebook. Smoke mode unless ``full``. ``image_size``/``epochs`` set the notebook's
    ``IMAGE_SIZE``/``EPOCHS`` (the same as ``agegender run --set image_size=N``), ``settings`` its
    ``SETTINGS`` (other ``key=value`` overrides, as ``agegender run --set``)."""
    from nbclient import NotebookClient

    source = HERE / f"{name}.ipynb"
    if not source.exists():
        known = ", ".join(sorted(p.stem for p in HERE.glob("*.ipynb")))
        raise FileNotFoundError(f"{source} does not exist; notebooks: {known}")
    run_dir, out = default_paths(name, full, run_dir, out)
    values = {"SMOKE": not full, "PROFILE": profile, "OUT": run_dir.as_posix()}
    if seed is not None:
        values["SEED"] = seed
    if data_root is not None:
        values["DATA_ROOT"] = data_root
    if image_size is not None:
        values["IMAGE_SIZE"] = image_size
    if epochs is not None:
        values["EPOCHS"] = epochs
    if settings:
        values["SETTINGS"] = list(settings)
    nb = inject_parameters(nbformat.read(source, as_version=4), values)
    os.environ.pop("MPLBACKEND", None)  # the kernel then uses matplotlib's inline backend, as Jupyter does
    client = NotebookClient(nb, timeout=timeout if timeout is not None else (None if full else 900),
                            kernel_name="python3", resources={"metadata": {"path": os.getcwd()}})
    try:
        client.execute()
    finally:  # an error cell is kept in the saved notebook, to read what failed
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", help="notebook name (= preset name), e.g. gra_net")
    parser.add_argument("--full", action="store_true", help="the paper's scale instead of a smoke run")
    parser.add_argument("--profile", help="a preset profile, e.g. cpu")
    parser.add_argument("--run-dir", help="run folder (default notebooks/runs/<preset>_smoke or _full)")
    parser.add_argument("--out", help="executed notebook (default <run-dir>/notebook.ipynb)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--data-root", help="datasets folder (default $AGEGENDER_DATA)")
    parser.add_argument("--image-size", type=int, help="the notebook's IMAGE_SIZE (agegender run --set image_size=N)")
    parser.add_argument("--epochs", type=int, help="the notebook's EPOCHS (agegender run --set epochs=N)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="the notebook's SETTINGS: an override as for agegender run --set (repeatable)")
    parser.add_argument("--timeout", type=int, help="seconds per cell (default 900 for smoke, none for --full)")
    args = parser.parse_args(argv)
    if any(importlib.util.find_spec(name) is None for name in ("nbclient", "ipykernel")):
        print(f"error: {NEEDS}", file=sys.stderr)
        return 2
    from nbclient.exceptions import CellExecutionError

    try:
        path = execute(args.preset, full=args.full, profile=args.profile, run_dir=args.run_dir, out=args.out,
                       seed=args.seed, data_root=args.data_root, image_size=args.image_size, epochs=args.epochs,
                       settings=args.settings, timeout=args.timeout)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CellExecutionError as error:
        failed = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        saved = default_paths(args.preset, args.full, args.run_dir, args.out)[1]
        print(f"error: a cell of {args.preset}.ipynb failed ({failed}); {saved} shows it", file=sys.stderr)
        return 1
    print(f"executed notebook written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
