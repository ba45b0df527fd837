"""Faces drawn on their photo (``serving.annotate.draw_faces``): a tag keeps inside the image wherever its face is."""

from __future__ import annotations

import numpy as np
import pytest

from agegender_tf.serving.annotate import BOX_COLOUR, annotated_path, draw_faces, face_label

FACE = {"gender": {"label": "female", "p": {"female": 0.9, "male": 0.1}}, "age": 27.4}


def _tag_columns(drawn: np.ndarray, rows: slice) -> np.ndarray:
    """Columns of ``rows`` holding the tag's fill colour."""
    return np.flatnonzero((drawn[rows] == BOX_COLOUR).all(axis=-1).any(axis=0))


@pytest.mark.parametrize("labels", [True, False])
def test_a_face_at_the_right_edge_gets_its_whole_tag_inside_the_image(labels):
    image = np.full((160, 240, 3), 40, np.uint8)
    above = slice(0, 60)  # the tag sits above its box
    centred = _tag_columns(np.asarray(draw_faces(image, [{**FACE, "box": [60, 60, 35, 40]}], labels=labels)), above)
    face = {**FACE, "box": [205, 60, 35, 40]}  # flush with the right edge
    photo = draw_faces(image, [face], labels=labels)
    assert photo.size == (240, 160)  # nothing added around the image
    drawn = np.asarray(photo)
    columns = _tag_columns(drawn, above)
    assert columns.size == centred.size  # as wide as where there is room: not cut off
    assert columns.max() <= 239 and (columns.min() < 205 if labels else columns.min() == 205)  # moved in if need be
    text = (drawn[above, columns.min():columns.max() + 1] > 200).all(axis=-1)
    assert text.any()  # the white text is drawn on the tag
    assert face_label(face) == "female 27y"


def test_a_face_at_the_top_edge_gets_its_tag_inside_the_box_top():
    image = np.full((100, 100, 3), 40, np.uint8)
    photo = np.asarray(draw_faces(image, [{**FACE, "box": [10, 0, 50, 50]}], labels=True))
    assert photo.shape == (100, 100, 3)
    assert (photo[0:3] == BOX_COLOUR).all(axis=-1).any()  # the tag starts at the top row, not above it


def test_annotated_files_of_same_named_inputs_get_numbered(tmp_path):
    used: set = set()
    first = annotated_path("a/photo.png", tmp_path, used)
    second = annotated_path("b/photo.jpg", tmp_path, used)
    assert (first.name, second.name) == ("photo.jpg", "photo_2.jpg")
