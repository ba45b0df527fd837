"""Where to obtain each dataset, its licence, the layout to unpack and the counts to expect.

Used by ``agegender data summarize`` when a root is missing and by ``agegender data info``, which
also says whether each dataset is found under ``$AGEGENDER_DATA`` (``local_status``);
``data_manifests/<dataset>/README.md`` says the same at more length. Counts are the publishers' (or
the papers') figures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agegender_tf.paths import DATA_ENV


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    page: str
    licence: str
    layout: str
    counts: str
    # Whether the dataset names the person in each photo (True), never does (False: the reader makes
    # each file its own subject), or only with an optional file (None: the reader's notes say).
    subject_ids: bool | None = True


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "utkface", "UTKFace (Aligned & Cropped Faces)", "https://susanqq.github.io/UTKFace/",
            "non-commercial research use only; image copyright stays with the original owners",
            "<root>/UTKFace/[age]_[gender]_[race]_[date&time].jpg.chip.jpg "
            "(or <root> is the UTKFace folder itself); gender 0 = male, 1 = female",
            "23,708 JPEG files, 200x200, ages 0-116",
            subject_ids=False,
        ),
        DatasetInfo(
            "adience", "Adience benchmark (unfiltered faces for gender and age classification)",
            "https://talhassner.github.io/home/projects/Adience/Adience-data.html",
            "research use under the dataset page's terms (registration); Flickr images under Creative Commons",
            "<root>/fold_{0..4}_data.txt and <root>/faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<image> "
            "(or <root>/aligned/<user_id>/landmark_aligned_face.<face_id>.<image>)",
            "19,370 fold rows in 5 subject-exclusive folds; 26,580 images of 2,284 subjects published",
        ),
        DatasetInfo(
            "imdb_wiki", "IMDB-WIKI (faces only)", "https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/",
            "academic research use only",
            "<root>/imdb_crop/<00..99>/*.jpg with imdb_crop/imdb.mat; <root>/wiki_crop/<00..99>/*.jpg with "
            "wiki_crop/wiki.mat",
            "460,723 IMDB + 62,328 Wikipedia face images (523,051)",
        ),
        DatasetInfo(
            "celeba", "CelebFaces Attributes (CelebA)", "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
            "non-commercial research and educational use only",
            "<root>/img_align_celeba/*.jpg with <root>/list_attr_celeba.txt (official), or "
            "<root>/{Train,Validate,Test}/{Female,Male}/*.jpg (paper 003's gender folders)",
            "202,599 images of 10,177 identities, 40 attributes incl. Male",
            subject_ids=None,  # only with identity_CelebA.txt
        ),
        DatasetInfo(
            "fgnet", "FG-NET Aging database", "https://yanweifu.github.io/FG_NET_data/",
            "research use; see the dataset page",
            "<root>/images/<SSS>A<AA>[a-z].JPG, e.g. images/001A02.JPG (subject 001, age 2)",
            "1,002 images of 82 subjects, ages 0-69",
        ),
        DatasetInfo(
            "afad", "Asian Face Age Dataset (AFAD)", "https://afad-dataset.github.io/",
            "research use; see the dataset page",
            "<root>/<age>/<111|112>/<image>.jpg (111 = male, 112 = female)",
            "164,432 images (AFAD-Full), ages 15-75; AFAD-Lite 59,344 images, ages 15-40",
            subject_ids=False,
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"no information on dataset {name!r}; known: {sorted(DATASETS)}") from None


def how_to_obtain(name: str) -> str:
    """A few lines telling a user where to get dataset ``name`` and how to unpack it."""
    info = dataset_info(name)
    return (
        f"{info.title}\n"
        f"  page:    {info.page}\n"
        f"  licence: {info.licence}\n"
        f"  layout:  {info.layout}\n"
        f"  counts:  {info.counts}\n"
        f"  then pass --root <folder> or set {DATA_ENV} to a folder holding {name}/"
    )


def has_subject_ids(name: str, notes: dict | None = None) -> bool:
    """Whether dataset ``name``'s ``subject`` column names people (``notes``: its reader's notes)."""
    known = dataset_info(name).subject_ids
    return bool((notes or {}).get("identities")) if known is None else known


def count_image_files(folder: Path) -> int:
    """Image files anywhere under ``folder`` (by suffix; nothing is decoded)."""
    from agegender_tf.imaging import IMAGE_SUFFIXES

    suffixes = {s.lower() for s in IMAGE_SUFFIXES}
    return sum(1 for _, _, files in os.walk(folder) for f in files if os.path.splitext(f)[1].lower() in suffixes)


def local_status(name: str) -> str:
    """Whether dataset ``name`` is found under ``$AGEGENDER_DATA``, in words, with its image file count."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return f"not found: ${DATA_ENV} is unset"
    home = Path(value).expanduser()
    if not (home / name).is_dir():
        return f"not found: ${DATA_ENV}/{name} does not exist"
    if not os.access(home / name, os.R_OK | os.X_OK):
        return f"found but unreadable: ${DATA_ENV}/{name} (permission denied)"
    return f"found: ${DATA_ENV}/{name} ({count_image_files(home / name):,} image files)"
