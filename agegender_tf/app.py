"""Streamlit web app: upload photos, see every face boxed and numbered with its predicted gender,
age group and age (paper 003 sec. 4.5, the deployment: the user uploads a photo, faces are detected
and cropped, and the page shows the photo and the predicted probability of each class).

Started by ``agegender app [--model M] [--port N]``, which runs
``streamlit run agegender_tf/app.py -- --model M``; the app reads its own arguments after ``--``.
It calls the same predictor as ``agegender predict`` (``agegender_tf.predict``) and never
re-implements preprocessing. Every upload is handled on its own: a bad file gets a one-line
message in the page and the other files still run.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

MAX_UPLOAD_MB = 15  # larger uploads are refused with a message in the page
DISPLAY_WIDTH = 1200  # the annotated photo is shown at most this wide
DETECTORS = ("mtcnn", "haar")
TITLE = "Age and gender from face photos"
CAPTION = ("The deployment of paper 003 (sec. 4.5): upload a photo; every face is detected, cropped "
           "and predicted; the page shows the photo and each class's probability.")


@dataclass
class PhotoResult:
    """What the page shows for one upload: the image and its faces, or the message saying why not."""

    name: str
    image: np.ndarray | None = None
    faces: list[dict] = field(default_factory=list)
    error: str | None = None
    warning: str | None = None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agegender_tf/app.py", description="the agegender web app")
    parser.add_argument("--model", default=None,
                        help="run folder or .keras file with model_card.json beside it (default: the bundled model)")
    parser.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS, help="the default face detector")
    return parser.parse_args(argv)


def decode_upload(name: str, data: bytes) -> np.ndarray:
    """uint8 RGB array of an uploaded file; ValueError naming the file when it is not a usable image."""
    if not data:
        raise ValueError(f"{name}: empty file (0 bytes)")
    if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
        raise ValueError(f"{name}: {len(data) / 2**20:.1f} MB is larger than the {MAX_UPLOAD_MB} MB limit")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)  # phone photos: upright as the user sees them
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{name}: too many pixels to decode safely ({exc})") from None
    except (Image.UnidentifiedImageError, OSError, SyntaxError) as exc:
        kind = "not an image" if isinstance(exc, Image.UnidentifiedImageError) else "corrupt or truncated image"
        raise ValueError(f"{name}: {kind} ({type(exc).__name__})") from None


def analyse_upload(name: str, data: bytes, predictor, detector: str, aligned: bool) -> PhotoResult:
    """Decode and predict one upload; any failure becomes the result's one-line ``error``."""
    try:
        image = decode_upload(name, data)
        faces = predictor.predict_photo(image, detector=detector, aligned=aligned)["faces"]
    except Exception as exc:  # one bad upload must not stop the others nor show a traceback
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return PhotoResult(name, error=message if message.startswith(name) else f"{name}: {message}")
    result = PhotoResult(name, image=image, faces=faces)
    if not faces:
        result.warning = (f"{name}: no face found by the {detector} detector; try the other detector, "
                          "or tick 'already-cropped face' for a single aligned face")
    return result


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without scalable default font
        return ImageFont.load_default()


def annotate(image: np.ndarray, faces: list[dict]) -> Image.Image:
    """The photo, shrunk to ``DISPLAY_WIDTH``, with each face's box and number drawn."""
    photo = Image.fromarray(image)
    scale = min(1.0, DISPLAY_WIDTH / photo.width)
    if scale < 1.0:
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    draw = ImageDraw.Draw(photo)
    line = max(2, round(min(photo.size) / 150))
    font = _font(max(14, round(min(photo.size) / 18)))
    for number, face in enumerate(faces, start=1):
        x, y, w, h = (v * scale for v in face["box"])
        draw.rectangle((x, y, x + w, y + h), outline=(255, 64, 0), width=line)
        label = str(number)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tag_y = y - (bottom - top) - 2 * line if y > (bottom - top) + 2 * line else y
        draw.rectangle((x, tag_y, x + right - left + 2 * line, tag_y + bottom - top + 2 * line), fill=(255, 64, 0))
        draw.text((x + line - left, tag_y + line - top), label, fill=(255, 255, 255), font=font)
    return photo


def face_crop(image: np.ndarray, box) -> np.ndarray:
    x, y, w, h = (int(v) for v in box)
    return image[max(0, y):y + h, max(0, x):x + w]


def face_summary(number: int, face: dict) -> str:
    """One line per face, e.g. ``Face 1: female (93%), 21-39 (61%), 27.4 years``."""
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
    chart = alt.Chart(frame, title=title, height=28 * len(frame)).mark_bar().encode(
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", title=None)),
        y=alt.Y("class:N", sort=None, title=None),
        tooltip=["class", alt.Tooltip("probability:Q", format=".1%")])
    st.altair_chart(chart, width="stretch")


def show_result(st, result: PhotoResult) -> None:
    st.subheader(result.name)
    if result.error:
        st.error(result.error)
        return
    if result.warning:
        st.warning(result.warning)
    st.image(annotate(result.image, result.faces),
             caption=f"{len(result.faces)} face{'s' if len(result.faces) != 1 else ''} found")
    for number, face in enumerate(result.faces, start=1):
        st.markdown(f"**{face_summary(number, face)}**")
        crop_column, gender_column, age_column = st.columns([1, 2, 3])
        crop_column.image(face_crop(result.image, face["box"]), width=96)
        with gender_column:
            _probability_chart(st, "gender", face["gender"]["p"])
        with age_column:
            if "age_group" in face:
                _probability_chart(st, f"age group ({face['age_group'].get('binning', '')})", face["age_group"]["p"])
            if face.get("age") is not None:
                st.caption(f"predicted age: {face['age']:.1f} years")


def main(argv: list[str]) -> None:
    import streamlit as st

    from agegender_tf import predict

    args = parse_args(argv)
    st.set_page_config(page_title="agegender", layout="wide")
    st.title(TITLE)
    st.caption(CAPTION)

    @st.cache_resource(show_spinner="Loading the model...")
    def load_predictor(model):
        return predict.load(model)

    try:
        predictor = load_predictor(args.model)
    except Exception as exc:  # a wrong --model: say so in the page, no traceback
        st.error(f"cannot load model {args.model or '(bundled)'}: {str(exc).strip().splitlines()[0]}")
        return

    with st.sidebar:
        detector = st.radio("Face detector", DETECTORS, index=DETECTORS.index(args.detector),
                            help="mtcnn: stronger; haar: OpenCV's Haar cascade, as in paper 003")
        aligned = st.checkbox("already-cropped face", help="treat each photo as one aligned face (UTKFace, Adience)")
        with st.expander("Model card"):
            st.json(predictor.card, expanded=False)

    uploads = st.file_uploader(f"Photos (JPEG, PNG, ...; at most {MAX_UPLOAD_MB} MB each)",
                               accept_multiple_files=True, max_upload_size=MAX_UPLOAD_MB)
    for upload in uploads or []:
        with st.spinner(f"Predicting {upload.name}..."):
            result = analyse_upload(upload.name, upload.getvalue(), predictor, detector, aligned)
        show_result(st, result)


if __name__ == "__main__":  # streamlit runs the script as __main__
    main(sys.argv[1:])
