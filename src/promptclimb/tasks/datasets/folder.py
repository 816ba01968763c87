"""Your own labelled images as a task:

- ``folder:PATH``: one sub-folder per class (``PATH/golden_retriever/*.jpg``); class names are the
  folder names with ``_`` and ``-`` read as spaces. If ``PATH/train`` and ``PATH/test`` both exist,
  each holds the class sub-folders and ``test`` is the test split; otherwise 40% of each class is
  held out as the (seed-independent) test split.
- ``csv:FILE``: a manifest with columns ``path,label`` and an optional ``split`` (train / val /
  test; without it 40% is held out); paths are relative to the CSV's folder, and the class names
  are in ``classnames.txt`` beside it, one per line. Labels are names or 0-based indices.

Relative paths that do not exist are also tried under ``--data-root``.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from promptclimb.tasks.base import TaskInfo
from promptclimb.tasks.classification import (
    ClassificationTask,
    DatasetError,
    FileImageSource,
    ImageItem,
    held_out,
    make_task,
)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
GENERIC_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.")
TEST_FRACTION = 0.4
FOLDER_LAYOUT = "PATH/<class name>/<images> (or PATH/train/<class name>/ and PATH/test/<class name>/)"
CSV_LAYOUT = "a CSV with columns path,label[,split] and classnames.txt (one name a line) beside it"


def class_dirs(path: Path) -> list[str]:
    """The names of the non-hidden sub-folders of ``path``, sorted."""
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_files(path: Path, recursive: bool = False) -> list[Path]:
    """The image files in ``path`` (by suffix), sorted; hidden files are skipped."""
    if not recursive:  # scandir: no stat per file, which matters for ImageNet's 1.3M images
        with os.scandir(path) as entries:
            return sorted(Path(e.path) for e in entries if not e.name.startswith(".") and e.is_file()
                          and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def folder_class_name(folder: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", folder).split())


def _resolve(arg: str, data_root: Path | None, kind: str) -> Path:
    if not arg:
        if data_root is None:
            raise DatasetError(f"{kind}: needs a path, e.g. {kind}:/data/my_images")
        return Path(data_root).expanduser()
    path = Path(arg).expanduser()
    if not path.is_absolute() and not path.exists() and data_root is not None:
        under_root = Path(data_root).expanduser() / path
        if under_root.exists():
            return under_root
    return path


def _scan(root: Path, parent: Path, labels: dict[str, int]) -> list[ImageItem]:
    """The images of each class folder under ``parent``, with ids relative to ``root``."""
    items: list[ImageItem] = []
    for folder, label in labels.items():
        files = image_files(parent / folder, recursive=True)
        if not files:
            raise DatasetError(f"{parent / folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        items.extend(ImageItem(f.relative_to(root).as_posix(), label) for f in files)
    return items


def build_folder(arg: str, *, shots: int, seed: int, data_root: Path | None = None) -> ClassificationTask:
    root = _resolve(arg, data_root, "folder")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder: folder:PATH wants {FOLDER_LAYOUT}")
    split_layout = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if split_layout else root
    folders = class_dirs(train_root)
    if not folders:
        raise DatasetError(f"{train_root} has no class sub-folders: folder:PATH wants {FOLDER_LAYOUT}")
    labels = {name: i for i, name in enumerate(folders)}
    items = _scan(root, train_root, labels)
    if split_layout:
        unknown = [f for f in class_dirs(root / "test") if f not in labels]
        if unknown:
            raise DatasetError(f"{root / 'test' / unknown[0]} has no match in {train_root}: "
                               "train/ and test/ must hold the same class folders")
        tested = {f: labels[f] for f in class_dirs(root / "test")}
        pool, test = items, _scan(root, root / "test", tested)
    else:
        pool, test = held_out(items, len(folders), TEST_FRACTION, f"folder:{root.name}")
    names = tuple(folder_class_name(f) for f in folders)
    info = TaskInfo(f"folder:{root.name}", f"images sorted into {len(names)} classes (folder {root.name})",
                    names, GENERIC_TEMPLATES)
    return make_task(info, FileImageSource(root), pool, test, shots, seed)


def read_class_names(path: Path) -> list[str]:
    """Non-empty lines of a class-name file; duplicates are an error."""
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err}") from None
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DatasetError(f"{path} lists {name!r} twice: one class name a line, each once")
        seen.add(name)
    if not names:
        raise DatasetError(f"{path} is empty: it should hold the class names, one a line")
    return names


def _label(text: str, index: dict[str, int], where: str) -> int:
    if text in index:
        return index[text]
    if text.isdigit():
        if int(text) < len(index):
            return int(text)
        raise DatasetError(f"{where}: label {text} is outside the {len(index)} names in classnames.txt")
    raise DatasetError(f"{where}: label {text!r} is neither a name in classnames.txt nor a 0-based index")


def build_csv(arg: str, *, shots: int, seed: int, data_root: Path | None = None) -> ClassificationTask:
    path = _resolve(arg, data_root, "csv")
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: csv:FILE wants {CSV_LAYOUT}")
    names_path = path.parent / "classnames.txt"
    if not names_path.is_file():
        raise DatasetError(f"{names_path} is missing: csv:FILE takes its class names from classnames.txt "
                           "beside the CSV, one a line")
    names = read_class_names(names_path)
    index = {name: i for i, name in enumerate(names)}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if not {"path", "label"} <= set(columns):
            raise DatasetError(f"{path} has columns {columns}: it needs path,label (and optionally split)")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    pool: list[ImageItem] = []
    test: list[ImageItem] = []
    has_split = "split" in columns
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        if not row["path"]:
            raise DatasetError(f"{path} line {n}: the path is empty")
        item = ImageItem(row["path"], _label(row["label"], index, f"{path} line {n}"))
        split = row.get("split", "").lower()
        if has_split and split not in ("train", "val", "test"):
            raise DatasetError(f"{path} line {n}: split {split!r} is not train, val or test")
        (test if split == "test" else pool).append(item)
    used = {i.label for i in (*pool, *test)}
    if len(used) != len(names):
        raise DatasetError(f"{names_path} names {len(names)} classes but {path} uses {len(used)} of them: "
                           "the class-name file does not match the manifest")
    if has_split and not test:
        raise DatasetError(f"{path} has a split column but no row with split=test")
    if not has_split:
        pool, test = held_out(pool, len(names), TEST_FRACTION, f"csv:{path.stem}")
    info = TaskInfo(f"csv:{path.stem}", f"images in {len(names)} classes (manifest {path.name})",
                    tuple(names), GENERIC_TEMPLATES)
    return make_task(info, FileImageSource(path.parent), pool, test, shots, seed)
