"""Streamlit web app: upload photos, see every face boxed and numbered with its predicted gender,
age group and age (paper 003 sec. 4.5, the deployment: the user uploads a photo, faces are detected
and cropped, and the page shows the photo and the predicted probability of each class).

Started by ``agegender app [--model M] [--port N]``, which runs
``streamlit run agegender_tf/serving/app.py -- --model M``; the app reads its own arguments after ``--``.
It calls the same predictor as ``agegender predict`` (``agegender_tf.serving.predictor``) and never
re-implements preprocessing. Every upload is handled on its own: a bad file gets a one-line
message in the page and the other files still run.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agegender_tf.imaging import image_size, load_rgb
from agegender_tf.serving import DETECTORS
from agegender_tf.serving.annotate import draw_faces

MAX_UPLOAD_MB = 15  # larger uploads are refused with a message in the page
DISPLAY_WIDTH = 1200  # the annotated photo is shown at most this wide (and the page cache keeps only that copy)
DISPLAY_HEIGHT = 4 * DISPLAY_WIDTH  # nor taller than this (a panorama on its side)
TITLE = "Age and gender from face photos"
CAPTION = ("The deployment of paper 003 (sec. 4.5): upload a photo; every face is detected, cropped "
           "and predicted; the page shows the photo and each class's probability.")


@dataclass
class PhotoResult:
    """What the page shows for one upload: a display copy of the photo (``scale`` times the file's
    size) and its faces (boxes in the file's pixels), or the message saying why not."""

    name: str
    image: np.ndarray | None = None
    scale: float = 1.0
    faces: list[dict] = field(default_factory=list)
    error: str | None = None
    warning: str | None = None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agegender_tf/serving/app.py", description="the agegender web app")
    parser.add_argument("--model", default=None,
                        help="run folder or .keras file with model_card.json beside it (default: the bundled model)")
    parser.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS,
                        help="the default face detector")
    return parser.parse_args(argv)


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def analyse_upload(name: str, data: bytes, predictor, detector: str, aligned: bool) -> PhotoResult:
    """Predict one upload with ``predictor.predict_photo`` (which reads the file as ``agegender
    predict`` does); any failure becomes the result's one-line ``error``, naming the upload."""
    path = None
    try:
        if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
            raise ValueError(f"{len(data) / 2**20:.1f} MB is larger than the {MAX_UPLOAD_MB} MB limit")
        with tempfile.TemporaryDirectory(prefix="agegender-app-") as folder:
            path = Path(folder) / (Path(name).name or "upload")
            path.write_bytes(data)
            found = predictor.predict_photo(path, detector=detector, aligned=aligned)["faces"]
            width, _ = image_size(path)
            image = display_copy(load_rgb(path, max_side=DISPLAY_WIDTH))
    except Exception as exc:  # one bad upload must not stop the others nor show a traceback
        message = first_line(exc)
        if path is not None:
            message = message.replace(str(path), name)
        return PhotoResult(name, error=message if message.startswith(name) else f"{name}: {message}")
    result = PhotoResult(name, image=image, scale=image.shape[1] / width, faces=found)
    if not found:
        result.warning = (f"{name}: no face found by the {detector} detector; try another detector, "
                          "or tick 'already-cropped face' for a single aligned face")
    return result


def display_copy(image: np.ndarray) -> np.ndarray:
    """``image`` shrunk (antialiased) to at most ``DISPLAY_WIDTH`` wide and ``DISPLAY_HEIGHT`` tall: all the page
    shows, and all a cached result keeps (a PNG, unlike a JPEG, is decoded at its full size)."""
    from PIL import Image

    height, width = image.shape[:2]
    shrink = min(1.0, DISPLAY_WIDTH / width, DISPLAY_HEIGHT / height)
    if shrink >= 1.0:
        return image
    size = (max(1, int(width * shrink)), max(1, int(height * shrink)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.Resampling.LANCZOS))


# ------------------------------------------------------------------------------------- plain-text names
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark (CommonMark escapes)


def markdown_escaped(text: str) -> str:
    """``text`` for a Streamlit Markdown body (``st.markdown``, ``st.error``, ``st.spinner``...), shown as
    written: every ASCII punctuation mark backslash-escaped (no link, emphasis, ``:red[...]``, ``$`` math,
    HTML), line breaks as spaces."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", " ".join(str(text).splitlines()))


def literal(text: str) -> str:
    """``text`` as a Markdown code span: shown exactly as written, in Streamlit too (whose emoji and icon
    shortcodes, ``:smile:``, would survive ``markdown_escaped``). The fence is longer than any run of
    backticks in ``text``; other control characters show as U+FFFD."""
    text = "".join(c if c.isprintable() else "\ufffd" for c in str(text)) or " "
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def message_markdown(message: str, name: str) -> str:
    """A one-line message about the upload ``name`` as Markdown: ``name`` wherever it appears as a code span
    (``literal``), the rest escaped (``markdown_escaped``)."""
    parts = str(message).split(name) if name else [str(message)]
    return literal(name).join(markdown_escaped(part) for part in parts)


def face_crop(image: np.ndarray, box, scale: float = 1.0) -> np.ndarray:
    """The face ``box`` (file pixels) cut from the display copy ``image``."""
    x, y, w, h = (int(round(v * scale)) for v in box)
    return image[max(0, y):y + max(1, h), max(0, x):x + max(1, w)]


def face_summary(number: int, face: dict) -> str:
    """One line per face, e.g. ``Face 1: female (93%), 20-29 (61%), 27.4 years``."""
    parts = []
    for task in ("gender", "age_group"):
        if task in face:
            label = face[task]["label"]
            parts.append(f"{label} ({face[task]['p'][label]:.0%})")
    if face.get("age") is not None:
        parts.append(f"{face['age']:.1f} years")
    return f"Face {number}: " + ", ".join(parts)


def _probability_chart(st, title: str, probabilities: dict) -> None:
    """Horizontal bars of one head's class probabilities on a fixed 0-100 % axis."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame({"class": list(probabilities), "probability": [float(p) for p in probabilities.values()]})
    bars = alt.Chart(frame).mark_bar().encode(
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", title=None)),
        y=alt.Y("class:N", sort=None, title=None),
        tooltip=["class", alt.Tooltip("probability:Q", format=".1%")])
    values = bars.mark_text(align="left", dx=3).encode(text=alt.Text("probability:Q", format=".0%"))
    chart = (bars + values).properties(title=title, height=alt.Step(24))
    st.altair_chart(chart, width="stretch")


def show_result(st, result: PhotoResult) -> None:
    """One upload's part of the page. The upload's name is the user's text: it reaches Streamlit's Markdown
    only as a code span (``literal``), so a name such as ``[click me](https://x).png`` shows as written."""
    st.subheader(literal(result.name), anchor=False)
    if result.error:
        st.error(message_markdown(result.error, result.name))
        return
    if result.warning:
        st.warning(message_markdown(result.warning, result.name))
    st.image(draw_faces(result.image, result.faces, result.scale, max_width=DISPLAY_WIDTH),
             caption=f"{len(result.faces)} face{'s' if len(result.faces) != 1 else ''} found")
    for number, face in enumerate(result.faces, start=1):
        st.markdown(f"**{markdown_escaped(face_summary(number, face))}**")
        crop_column, gender_column, age_column = st.columns([1, 2, 3])
        crop_column.image(face_crop(result.image, face["box"], result.scale), width=96)
        if face.get("age") is not None:
            crop_column.metric("age (years)", f"{face['age']:.0f}")
        if "gender" in face:
            with gender_column:
                _probability_chart(st, "gender", face["gender"]["p"])
        if "age_group" in face:
            with age_column:
                _probability_chart(st, f"age group ({face['age_group'].get('binning', '')})", face["age_group"]["p"])


def main(argv: list[str]) -> None:
    from agegender_tf import import_tensorflow_quietly

    import_tensorflow_quietly()  # before the predictor: no oneDNN, cuInit or cpu_feature_guard lines in the log
    import streamlit as st

    from agegender_tf.serving import predictor as predict

    args = parse_args(argv)
    st.set_page_config(page_title="agegender", layout="wide")
    st.title(TITLE)
    st.caption(CAPTION)

    @st.cache_resource(show_spinner="Loading the model...")
    def load_predictor(model):
        return predict.load(model)

    @st.cache_data(max_entries=64, show_spinner=False)  # a page rerun does not predict a photo again
    def cached_analysis(name: str, data: bytes, _predictor, detector: str, aligned: bool) -> PhotoResult:
        return analyse_upload(name, data, _predictor, detector, aligned)

    try:
        predictor = load_predictor(args.model)
    except Exception as exc:  # a wrong --model: say so in the page, no traceback
        st.error(f"cannot load the model: {markdown_escaped(first_line(exc))}")
        return

    with st.sidebar:
        detector = st.radio("Face detector", DETECTORS, index=DETECTORS.index(args.detector),
                            help="blazeface: fastest; mtcnn: MTCNN; haar: OpenCV's Haar cascade, as in paper 003")
        aligned = st.checkbox("already-cropped face", help="treat each photo as one aligned face (UTKFace, Adience)")
        with st.expander("Model card"):
            st.json(predictor.card, expanded=False)

    uploads = st.file_uploader(f"Photos (JPEG, PNG, ...; at most {MAX_UPLOAD_MB} MB each)",
                               accept_multiple_files=True, max_upload_size=MAX_UPLOAD_MB)
    for upload in uploads or []:
        with st.spinner(f"Predicting {literal(upload.name)}..."):
            result = cached_analysis(upload.name, upload.getvalue(), predictor, detector, aligned)
        show_result(st, result)


if __name__ == "__main__":  # streamlit runs this file as __main__; run the importable module's
    from agegender_tf.serving.app import main as app_main  # copy, so cached results pickle by its class names

    app_main(sys.argv[1:])
