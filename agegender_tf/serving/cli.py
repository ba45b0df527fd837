"""``agegender predict``, ``export``, ``export-accuracy`` and ``app``: the commands that use a trained model.

``predict`` exit status: 0 when every file was read (photos without a face included), 1 when any
file could not be used (each named on stderr in one line; the others still run), 2 for a usage
error (unknown option, missing or unreadable model).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path

from agegender_tf import import_tensorflow_quietly
from agegender_tf.errors import UsageError
from agegender_tf.imaging import IMAGE_SUFFIXES, special_kind
from agegender_tf.serving import DETECTORS, app_server


def add_commands(subparsers) -> None:
    if "run" in subparsers.choices:  # a run also judges its networks on faces from elsewhere
        run = subparsers.choices["run"]
        run.set_defaults(func=_scored_out_of_domain(run.get_default("func")))
    predict = subparsers.add_parser(
        "predict", help="gender and age of every face in photos (or of aligned face crops)",
        description="Predict gender and age of the faces in image files or folders of them. Bad files are "
                    "named on stderr and skipped; the exit status is 1 if any file failed.")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    predict.add_argument("--model", default=None, help="run folder, network folder or .keras file with its "
                                                       "model_card.json beside it (default: the bundled model)")
    predict.add_argument("--json", action="store_true", help="print one JSON object per image (JSON lines)")
    predict.add_argument("--annotate", metavar="OUT_DIR",
                         help="write each photo with boxes and labels drawn into OUT_DIR (each file's path is "
                              "printed on stderr and, with --json, as \"annotated\")")
    predict.add_argument("--aligned", action="store_true", help="each image is one already-cropped face")
    predict.add_argument("--batch-size", type=int, default=64, help="faces per network call (default 64)")
    predict.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS,
                         help="face detector for photos (default blazeface, the fastest; mtcnn; haar is paper 003's)")
    add_mirror_option(predict)
    predict.set_defaults(func=_predict)  # starts TensorFlow itself, once the paths are checked

    export = subparsers.add_parser("export", help="export a trained model as SavedModel, TFLite or ONNX")
    export.add_argument("--model", default=None, help="as for predict (default: the bundled model)")
    export.add_argument("--format", required=True, choices=("savedmodel", "tflite", "onnx"))
    export.add_argument("--out", required=True, help="output folder (savedmodel) or file")
    export.add_argument("--quantize", choices=("dynamic",), default=None,
                        help="TFLite only: dynamic-range quantized weights")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out (file or SavedModel folder); without it an existing "
                             "file or non-empty folder is refused")
    add_mirror_option(export)
    export.set_defaults(func=_export, uses_tensorflow=True)

    accuracy = subparsers.add_parser(
        "export-accuracy", help="accuracy of the float32 and dynamic-range quantized TFLite exports",
        description="Export the model as float32 and as dynamic-range quantized TFLite and run both, and the "
                    "Keras model, on the committed UTKFace test faces (aligned, as predict --aligned): gender "
                    "accuracy, age-group accuracy, age MAE, agreement with Keras and file sizes.")
    accuracy.add_argument("--model", default=None, help="as for predict (default: the bundled model)")
    accuracy.add_argument("--out", default=None, metavar="DIR",
                          help="keep model.tflite, model_dynamic.tflite (with their cards) and accuracy.json "
                               "here (default: a temporary folder)")
    accuracy.add_argument("--split", default="test", choices=("test", "val", "train"),
                          help="part of the committed UTKFace split (default test)")
    accuracy.add_argument("--limit", type=int, default=None, metavar="N",
                          help="a seeded sample of N faces instead of all")
    accuracy.add_argument("--data-root", default=None,
                          help="UTKFace folder (default: $AGEGENDER_DATA/utkface)")
    accuracy.add_argument("--split-file", default=None,
                          help="file,split CSV (default: data_manifests/utkface/split.csv)")
    accuracy.add_argument("--batch-size", type=int, default=64, help="faces read and resized at a time (default 64)")
    accuracy.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_mirror_option(accuracy)
    accuracy.set_defaults(func=_export_accuracy, uses_tensorflow=True)

    evaluate = subparsers.add_parser(
        "evaluate", help="score a model as agegender predict sees faces: Adience (from elsewhere) or UTKFace",
        description="Score a model as agegender predict sees faces: the detector, then the training framing "
                    "(--aligned: each file as one face's crop). adience: the Adience faces on disk "
                    "($AGEGENDER_DATA/adience, never trained on): gender accuracy, age groups exact and 1-off. "
                    "utkface: a part of the committed UTKFace split (--split): gender accuracy and age MAE. A "
                    "face not found counts as wrong.")
    evaluate.add_argument("--model", default=None, help="as for predict (default: the bundled model)")
    evaluate.add_argument("--dataset", default="adience", choices=("adience", "utkface"))
    evaluate.add_argument("--split", default="val", choices=("val", "test", "train"),
                          help="utkface: the part of the committed split (default val: choose models on it)")
    evaluate.add_argument("--data-root", default=None, help="folder holding adience/ (default: $AGEGENDER_DATA)")
    evaluate.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS)
    evaluate.add_argument("--aligned", action="store_true", help="each file is one already-cropped face")
    evaluate.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N faces")
    evaluate.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_mirror_option(evaluate)
    evaluate.set_defaults(func=_evaluate, uses_tensorflow=True)

    boxes = subparsers.add_parser(
        "detect-boxes", help="find each image's face with the predictor's detector, once, for framed training",
        description="Run the predictor's face detector over every image of a dataset and write the largest box "
                    "of each (data_manifests/DATASET/boxes_DETECTOR.csv), so training cuts faces as predict does.")
    boxes.add_argument("dataset", help="dataset name (e.g. utkface)")
    boxes.add_argument("--root", default=None, help="the dataset's folder (default: $AGEGENDER_DATA/DATASET)")
    boxes.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS)
    boxes.add_argument("--out", default=None, help="file to write (default: the committed boxes file)")
    boxes.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by path)")
    boxes.set_defaults(func=_detect_boxes, uses_tensorflow=True)

    app_server.add_command(subparsers)


def add_mirror_option(parser) -> None:
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                        help="average each face with its mirror image, at twice the network cost (default: as "
                             "the model card's test_time.mirror says; the bundled model's says yes)")


def expand_paths(paths) -> tuple[list[Path], list[str]]:
    """(image files, one-line problems): folders expand to their image files, sorted. A given path that
    is not a regular file (a FIFO, a device) is refused by name; inside a folder, entries with an image
    suffix that are not regular files, broken links and links to folders (never followed, so a loop
    cannot trap the walk) are skipped and counted in one line per folder."""
    files, problems = [], []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found, skipped = _walk_images(path)
            if skipped:
                counts = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
                problems.append(f"{path}: skipped {sum(skipped.values())} entries that are not image files ({counts})")
            if not found:
                problems.append(f"{path}: folder holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_symlink() and not path.exists():
            problems.append(f"{path}: broken link")
        elif not path.exists():
            problems.append(f"{path}: file not found")
        elif not path.is_file():
            problems.append(f"{path}: not a regular file ({special_kind(path.stat().st_mode)})")
        else:
            files.append(path)
    return files, problems


def _walk_images(folder: Path) -> tuple[list[Path], dict[str, int]]:
    """Image files under ``folder`` (links to files followed, links to folders not) and what was skipped."""
    found, skipped = [], {}
    for top, folders, names in os.walk(folder, followlinks=False):
        for name in folders:
            if os.path.islink(os.path.join(top, name)):
                skipped["links to folders"] = skipped.get("links to folders", 0) + 1
        for name in names:
            path = Path(top, name)
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                mode = path.stat().st_mode
            except OSError:
                skipped["broken links"] = skipped.get("broken links", 0) + 1
                continue
            if stat.S_ISREG(mode):
                found.append(path)
            else:
                kind = special_kind(mode).removeprefix("a ") + "s"
                skipped[kind] = skipped.get(kind, 0) + 1
    return sorted(found), skipped


def rounded(result: dict) -> dict:
    """A photo result with probabilities to 4 decimals and ages to 1 (for printing)."""
    faces = []
    for face in result["faces"]:
        face = dict(face)
        for task, value in face.items():
            if isinstance(value, dict) and "p" in value:
                face[task] = {**value, "p": {k: round(p, 4) for k, p in value["p"].items()}}
        if "age" in face:
            face["age"] = round(face["age"], 1)
        faces.append(face)
    return {**result, "faces": faces}


def _summary(face: dict, task: str) -> str:
    value = face.get(task)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return f"{value['label']} {value['p'][value['label']]:.2f}"


def _print_table_header(tasks) -> None:
    print(f"{'file':<40} {'face':>4}  {'box [x, y, w, h]':<22}" + "".join(f"{t:<20}" for t in tasks))


def _print_table_rows(result: dict, tasks) -> None:
    name = result["file"] if len(result["file"]) <= 40 else "..." + result["file"][-37:]
    if not result["faces"]:
        print(f"{name:<40} {'-':>4}  no face found")
    for number, face in enumerate(result["faces"], 1):
        box = "[" + ", ".join(str(v) for v in face["box"]) + "]"
        print(f"{name:<40} {number:>4}  {box:<22}" + "".join(f"{_summary(face, t):<20}" for t in tasks))


def annotate(path, result: dict, out_dir, used: set) -> Path:
    """Write the photo at ``path`` with each face boxed, numbered and labelled into ``out_dir``."""
    from agegender_tf.imaging import image_size, load_rgb
    from agegender_tf.paths import replace_atomic
    from agegender_tf.serving.annotate import annotated_path, draw_faces
    from agegender_tf.serving.predictor import PHOTO_SIDE

    image = load_rgb(path, max_side=PHOTO_SIDE)
    drawn = draw_faces(image, result["faces"], scale=image.shape[1] / image_size(path)[0], labels=True)
    target = annotated_path(path, out_dir, used)
    target.parent.mkdir(parents=True, exist_ok=True)
    with replace_atomic(target) as temporary:
        drawn.save(temporary, format="JPEG", quality=92)
    return target


def _predict(args) -> int:
    """Check what was typed (batch size, model, paths) before TensorFlow starts: a mistake costs no model load."""
    from agegender_tf.model_card import read_model_card
    from agegender_tf.serving import predictor as predict

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    read_model_card(predict.locate_model(args.model)[1])
    files, problems = expand_paths(args.paths)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr, flush=True)
    if not files:  # nothing to predict: the one-line problems are the whole answer
        return 1
    if not getattr(args, "debug", False):
        import_tensorflow_quietly()
    if args.detector != "haar":  # the learned detectors load their networks (and say what to install)
        from agegender_tf.serving import faces

        try:
            faces.require_detector(args.detector)
        except ImportError as exc:
            raise UsageError(str(exc)) from None
    predictor = predict.load(args.model, batch_size=args.batch_size, mirror=args.mirror)
    failed = bool(problems)
    if not args.json:
        _print_table_header(predictor.tasks)
    used: set = set()
    for path, result, error in predictor.predict_files(files, aligned=args.aligned, detector=args.detector):
        if error:
            failed = True
            print(f"error: {error}", file=sys.stderr, flush=True)
            continue
        shown = rounded(result)
        if args.annotate:
            target = annotate(path, result, args.annotate, used)
            print(f"annotated {path} -> {target}", file=sys.stderr, flush=True)
            shown["annotated"] = str(target)
        if args.json:
            print(json.dumps(shown), flush=True)
        else:
            _print_table_rows(shown, predictor.tasks)
    return 1 if failed else 0


def _export(args) -> int:
    from agegender_tf.serving import export
    from agegender_tf.serving import predictor as predict

    export.check_available(args.format)  # before loading the model: a missing package is one line
    export.check_destination(args.out, args.format, args.overwrite)
    predictor = predict.load(args.model, mirror=args.mirror)
    path = export.export(predictor, args.format, args.out, args.quantize, overwrite=args.overwrite)
    print(json.dumps({"out": str(path), "card": str(export.card_path(path, args.format)), "format": args.format,
                      "quantize": args.quantize, "input_size": predictor.card["load_size"]}))
    return 0


def _export_accuracy(args) -> int:
    import tempfile

    from agegender_tf.serving import export, export_accuracy
    from agegender_tf.serving import predictor as predict

    export.check_available("tflite-run")
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise UsageError("--batch-size and --limit must be at least 1")
    predictor = predict.load(args.model, mirror=args.mirror)
    frame = export_accuracy.labelled_faces(args.data_root, args.split, args.split_file, args.limit)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.out) if args.out else Path(scratch)
        result = export_accuracy.evaluate_tflite(predictor, frame, folder, batch_size=args.batch_size)
        result["split"] = args.split
        if args.out:
            (folder / "accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result) if args.json else export_accuracy.format_evaluation(result))
    return 0


def _detect_boxes(args) -> int:
    from agegender_tf.paths import DATA_ENV, dataset_root
    from agegender_tf.serving.boxes import write_dataset_boxes

    root = args.root or dataset_root(args.dataset)
    if root is None:
        raise UsageError(f"{args.dataset} not found: pass --root or set {DATA_ENV}")
    print(json.dumps(write_dataset_boxes(args.dataset, root, args.detector, args.out, args.limit)))
    return 0


def _evaluate(args) -> int:
    from agegender_tf.paths import DATA_ENV, data_home
    from agegender_tf.serving import out_of_domain
    from agegender_tf.serving import predictor as predict

    home = Path(args.data_root) if args.data_root else data_home()
    root = home / args.dataset if home else None
    if root is None or not root.is_dir():
        raise UsageError(f"{args.dataset} not found: pass --data-root or set {DATA_ENV} (holding {args.dataset}/)")
    if args.dataset == "utkface":
        from agegender_tf.serving.export_accuracy import labelled_faces

        frame = labelled_faces(root, args.split, limit=args.limit)
    else:
        frame = out_of_domain.adience_faces(root, args.limit)
    if frame.empty:
        raise UsageError(f"{root}: no labelled faces on disk")
    predictor = predict.load(args.model, mirror=args.mirror)
    result = out_of_domain.score(predictor, frame, detector=args.detector, aligned=args.aligned,
                                 dataset=args.dataset)
    if args.dataset == "utkface":
        result["split"] = args.split
    result["model"] = predictor.source
    if args.json:
        print(json.dumps(result))
    else:
        ages = (f"age MAE {result.get('age_mae', '-')}" if args.dataset == "utkface" else
                f"age groups exact {result.get('age_group_exact', '-')}, 1-off {result.get('age_group_one_off', '-')}")
        print(f"{result['faces']} {args.dataset} faces ({result['path']}), a face found in {result['face_found']}: "
              f"gender {result.get('gender_accuracy', '-')}, {ages}")
    return 0


def _scored_out_of_domain(run_command):
    """``agegender run``, then its networks scored on the Adience faces on disk (``serving.out_of_domain``),
    recorded in its ``report.json``; nothing more where the data root holds no Adience faces."""

    def run_and_score(args) -> int:
        status = run_command(args)
        if status or not getattr(args, "chief", True):  # only the chief of several workers scores its run
            return status
        from agegender_tf.serving.out_of_domain import score_run

        scores = score_run(args.out, args.data_root, smoke=args.smoke)
        for name, row in (scores or {}).get("networks", {}).items():
            print(f"out of domain ({row['faces']} Adience faces, {row['path']}): {name} gender "
                  f"{row.get('gender_accuracy', '-')}, age groups exact {row.get('age_group_exact', '-')}, "
                  f"1-off {row.get('age_group_one_off', '-')}")
        return 0

    return run_and_score
