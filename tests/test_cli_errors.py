"""A user's mistakes on the command line (unknown names, bad values, missing paths): one line, exit 2,
nothing written.

Each case runs ``agegender_tf.cli.main`` in this process (no training); the import checks run the
command line in a fresh interpreter, where TensorFlow must stay unloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agegender_tf.cli import main
from agegender_tf.errors import UsageError
from agegender_tf.paths import DATA_ENV
from tests.fixtures import write_jpeg

UTKFACE_NAMES = ("23_0_1_20170116174525125.jpg.chip.jpg", "5_1_0_20170116174525126.jpg.chip.jpg")


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """An empty current folder (``runs/`` would appear here) and a data root holding utkface/."""
    data = tmp_path / "data"
    for seed, name in enumerate(UTKFACE_NAMES):
        write_jpeg(data / "utkface" / "UTKFace" / name, size=32, seed=seed)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv(DATA_ENV, str(data))
    return work


def user_error(capsys, argv: list[str]) -> str:
    """Run ``agegender ARGV``; check exit 2 and one stderr line without a traceback; return that line."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    line = captured.err.strip()
    assert line.startswith("error: ") and "\n" not in line, captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return line


def nothing_written(work: Path, *paths: Path) -> None:
    assert list(work.iterdir()) == [], f"the run left {list(work.iterdir())}"
    for path in paths:
        assert not path.exists()


def test_unknown_preset_suggests_the_close_name(workdir, capsys):
    line = user_error(capsys, ["run", "granet"])
    assert "unknown preset 'granet'" in line and "did you mean gra_net" in line
    nothing_written(workdir)


@pytest.mark.parametrize("root, fragment", [
    ("/nonexistent-agegender-root", "data root /nonexistent-agegender-root does not exist"),
    ("EMPTY", "dataset folder"),
])
def test_missing_data_root_or_dataset_folder(workdir, tmp_path, capsys, root, fragment):
    if root == "EMPTY":
        root = str(tmp_path / "empty")
        Path(root).mkdir()
    line = user_error(capsys, ["run", "gra_net", "--data-root", root, "--out", str(workdir / "out")])
    assert fragment in line and "utkface" in line
    nothing_written(workdir)


def test_no_data_root_at_all(workdir, capsys, monkeypatch):
    monkeypatch.delenv(DATA_ENV)
    line = user_error(capsys, ["run", "gra_net"])
    assert "--data-root" in line and DATA_ENV in line
    nothing_written(workdir)


def test_unreadable_data_root_names_the_path(workdir, capsys, monkeypatch):
    # Tests may run as root, for whom chmod 000 changes nothing: refuse the listing as the OS would.
    unreadable = Path(os.environ[DATA_ENV]) / "utkface" / "UTKFace"
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != unreadable)
    line = user_error(capsys, ["run", "gra_net"])
    assert f"cannot read {unreadable}" in line and "permission denied" in line
    nothing_written(workdir)


def test_unreadable_dataset_for_data_commands(tmp_path, capsys, monkeypatch):
    import agegender_tf.data.readers as readers

    def refuse(name, root, **options):
        raise PermissionError(13, "Permission denied", str(Path(root) / "UTKFace"))

    monkeypatch.setattr(readers, "read_dataset", refuse)
    line = user_error(capsys, ["data", "summarize", "utkface", "--root", str(tmp_path)])
    assert f"cannot read {tmp_path / 'UTKFace'}: permission denied" in line


@pytest.mark.parametrize("assignment, fragment", [
    ("image_size=abc", "image_size must be an integer from 16 to 1024, got 'abc'"),
    ("epochs=-1", "epochs must be an integer >= 1, got -1"),
    ("epochs=0", "epochs must be an integer >= 1, got 0"),
    ("batch_size=0", "batch_size must be an integer >= 1, got 0"),
    ("max_train_images=-5", "max_train_images must be an integer >= 1 or None, got -5"),
    ("optimizer.learning_rate=0", "optimizer.learning_rate must be a number > 0, got 0"),
    ("imagesize=64", "no field 'imagesize' (did you mean image_size"),
    ("epochs", "key=value"),
    ("title=x", "'title' cannot be set"),
])
def test_bad_set_key_or_value(workdir, capsys, assignment, fragment):
    out = workdir / "out"
    line = user_error(capsys, ["run", "gra_net", "--set", assignment, "--out", str(out)])
    assert line.startswith(f"error: --set {assignment}: ") and fragment in line
    nothing_written(workdir, out)


def test_model_args_key_the_builder_does_not_take(workdir, capsys):
    out = workdir / "out"
    line = user_error(capsys, ["run", "gra_net", "--smoke", "--set", "model_args.stem=8", "--out", str(out)])
    assert "builder 'gra_net' takes no argument 'stem'" in line and "stem_filters" in line
    nothing_written(workdir, out)


def test_seed_not_a_number(workdir, capsys):
    line = user_error(capsys, ["run", "gra_net", "--seed", "abc"])
    assert "--seed" in line and "'abc'" in line
    nothing_written(workdir)


def test_out_is_an_existing_file(workdir, capsys):
    target = workdir / "taken.txt"
    target.write_text("not a run folder")
    line = user_error(capsys, ["run", "gra_net", "--out", str(target)])
    assert f"--out {target} is a file" in line
    assert target.read_text() == "not a run folder" and sorted(workdir.iterdir()) == [target]


def test_unknown_profile(workdir, capsys):
    line = user_error(capsys, ["run", "gra_net", "--profile", "cpus"])
    assert "no profile 'cpus'" in line and "did you mean cpu" in line
    nothing_written(workdir)


def test_class_weight_on_a_multi_output_network(workdir, capsys):
    out = workdir / "out"
    line = user_error(capsys, ["run", "gra_net", "--set", "class_weight=balanced", "--out", str(out)])
    assert "class_weight='balanced' needs networks with one classification output" in line
    assert "['gender', 'age_group', 'age']" in line or "('gender', 'age_group', 'age')" in line
    nothing_written(workdir, out)


def test_unknown_command(capsys):
    assert "invalid choice: 'rnu'" in user_error(capsys, ["rnu"])


def _run_folder(folder: Path, report_text: str | None = '{"preset": "gra_net"}', predictions: bool = True) -> Path:
    folder.mkdir()
    (folder / "preset.json").write_text(json.dumps({"name": "gra_net"}))
    for name in ("history.csv", "train_ages.csv") + (("predictions.csv",) if predictions else ()):
        (folder / name).write_text("x\n1\n")
    if report_text is not None:
        (folder / "report.json").write_text(report_text)
    return folder


def test_report_on_a_missing_folder(tmp_path, capsys):
    line = user_error(capsys, ["report", "gra_net", "--run", str(tmp_path / "nowhere")])
    assert f"run folder {tmp_path / 'nowhere'} does not exist" in line


def test_report_on_a_cut_short_report_json(tmp_path, capsys):
    folder = _run_folder(tmp_path / "run", report_text='{"preset": "gra_net", "metr')
    line = user_error(capsys, ["report", "gra_net", "--run", str(folder)])
    assert f"{folder / 'report.json'} is cut short" in line and "rerun" in line
    assert not (folder / "figures").exists()


def test_report_without_predictions(tmp_path, capsys):
    folder = _run_folder(tmp_path / "run", predictions=False)
    line = user_error(capsys, ["report", "gra_net", "--run", str(folder)])
    assert f"{folder / 'predictions.csv'} is missing" in line


def test_report_of_another_preset(tmp_path, capsys):
    folder = _run_folder(tmp_path / "run")
    assert "holds a run of preset 'gra_net', not 'cnn_lstm'" in user_error(capsys, ["report", "cnn_lstm", "--run",
                                                                                   str(folder)])


@pytest.mark.parametrize("argv", [["--debug", "run", "granet"], ["run", "granet", "--debug"]])
def test_debug_shows_the_exception(workdir, argv):
    with pytest.raises(UsageError, match="unknown preset 'granet'"):
        main(argv)
    nothing_written(workdir)


def _fresh_python(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})}, cwd=Path(__file__).resolve().parents[1])


def test_the_entry_point_prints_one_line(tmp_path):
    completed = _fresh_python("import sys; from agegender_tf.cli import main; sys.exit(main(sys.argv[1:]))",
                              "run", "granet", env={DATA_ENV: str(tmp_path)})
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [completed.stderr.strip()] and "gra_net" in completed.stderr


def test_help_papers_and_data_commands_import_no_tensorflow(tmp_path):
    for seed, name in enumerate(UTKFACE_NAMES):
        write_jpeg(tmp_path / "utkface" / "UTKFace" / name, size=32, seed=seed)
    script = """
        import contextlib, io, sys
        import agegender_tf
        assert "tensorflow" not in sys.modules, "import agegender_tf loaded TensorFlow"
        from agegender_tf.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--help"])
            except SystemExit as stop:
                assert stop.code == 0
            codes = [main(["papers"]), main(["data", "info"]), main(["data", "summarize", "utkface", "--json"]),
                     main(["data", "audit", "utkface"])]
        assert codes == [0, 0, 0, 0], codes
        loaded = sorted(name for name in ("tensorflow", "keras") if name in sys.modules)
        print("loaded:", loaded)
    """
    completed = _fresh_python(script, env={DATA_ENV: str(tmp_path)})
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == "loaded: []"
    assert "oneDNN" not in completed.stderr and "cuda" not in completed.stderr.lower()
