"""The 11 CoOp data sets and the 4 ImageNet transfer sets, read from CoOp's on-disk layout under
``--data-root`` (https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md): ``coop:caltech101``,
``coop:imagenet_a``, ...

Folder names, split files, templates and descriptions are data, in ``tasks/data/coop.json``; each
entry's ``format`` picks a reader:

- ``split``: CoOp's ``split_zhou_*.json`` ({"train"|"val"|"test": [[path, label, class name]]},
  paths relative to the image folder); class names come from the file.
- ``fgvc``: FGVC-Aircraft's ``images_variant_{train,test}.txt`` and ``variants.txt``.
- ``imagenet``: ``images/{train,val}/<wnid>/`` and ``classnames.txt`` ("wnid class name" a line).
- ``transfer``: a test-only ImageNet variant; its shots come from ImageNet's training set (CoOp's
  domain-generalisation protocol), so ``imagenet/images/train`` must be there too.

Shots (train) and val come from the training split; the test split is the data set's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptclimb.tasks.base import TaskInfo
from promptclimb.tasks.classification import (
    ClassificationTask,
    DatasetError,
    FileImageSource,
    ImageItem,
    data_file,
    handwritten_templates,
    make_task,
)
from promptclimb.tasks.datasets.folder import class_dirs, image_files

# class names, training pool, test split
Splits = tuple[tuple[str, ...], list[ImageItem], list[ImageItem]]


@dataclass
class Layout:
    """One data set's place under the data root, and the error messages that point at it."""

    root: Path
    name: str
    entry: dict[str, Any]
    url: str

    @property
    def folder(self) -> Path:
        return self.root / self.entry["folder"]

    def expected(self) -> str:
        parts = [f"{self.entry['folder']}/{self.entry['images'][0]}/".replace("//", "/")]
        parts += [f"{self.entry['folder']}/{f}" for f in self.files()]
        return ", ".join(parts)

    def files(self) -> list[str]:
        entry = self.entry
        lists = list(entry.get("lists", {}).values())
        return [f for f in (entry.get("split"), entry.get("classes"), *lists) if f]

    def help(self) -> str:
        return f"{self.url}#{self.entry['anchor']}"

    def check_folder(self) -> None:
        if not self.folder.is_dir():
            raise DatasetError(f"coop:{self.name} not found: expected {self.expected()} under {self.root}; "
                               f"see {self.help()}")

    def image_dir(self) -> Path:
        for rel in self.entry["images"]:
            if (self.folder / rel).is_dir():
                return self.folder / rel
        raise DatasetError(f"{self.folder / self.entry['images'][0]} is missing: coop:{self.name} expects "
                           f"{self.expected()}; see {self.help()}")

    def file(self, rel: str) -> Path:
        path = self.folder / rel
        if not path.is_file():
            raise DatasetError(f"{path} is missing: coop:{self.name} expects {self.expected()}; see {self.help()}")
        return path

    def item(self, path: Path, label: int) -> ImageItem:
        return ImageItem(path.relative_to(self.root).as_posix(), label)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read {path}: {err}") from None


def read_split_file(lay: Layout) -> Splits:
    images = lay.image_dir()
    path = lay.file(lay.entry["split"])
    data = _load_json(path)
    if not isinstance(data, dict) or not {"train", "test"} <= data.keys():
        raise DatasetError(f"{path} is not a CoOp split file: it needs \"train\" and \"test\" lists")
    names: dict[int, str] = {}
    rows: dict[str, list[tuple[str, int]]] = {}
    for split in ("train", "val", "test"):
        rows[split] = []
        for row in data.get(split, []):
            try:
                rel, label, cname = str(row[0]), int(row[1]), str(row[2])
            except (TypeError, ValueError, IndexError, KeyError):
                raise DatasetError(f"{path}: {row!r} in {split!r} is not [path, label, class name]") from None
            if names.setdefault(label, cname) != cname:
                raise DatasetError(f"{path}: label {label} is both {names[label]!r} and {cname!r}")
            rows[split].append((rel, label))
    if sorted(names) != list(range(len(names))):
        raise DatasetError(f"{path}: the labels are not 0..{len(names) - 1}, so they cannot index the class names")
    if rows["train"] and not (images / rows["train"][0][0]).is_file():
        raise DatasetError(f"{images / rows['train'][0][0]} (the first training image of {path.name}) is missing: "
                           f"coop:{lay.name} expects {lay.expected()}; see {lay.help()}")
    pool = [lay.item(images / rel, label) for rel, label in rows["train"]]
    test = [lay.item(images / rel, label) for rel, label in rows["test"]]
    return tuple(names[i].replace("_", " ") for i in range(len(names))), pool, test


def read_fgvc(lay: Layout) -> Splits:
    images = lay.image_dir()
    classes_file = lay.file(lay.entry["classes"])
    names = [line.strip() for line in classes_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    index = {name: i for i, name in enumerate(names)}
    splits: dict[str, list[ImageItem]] = {}
    for split, rel in lay.entry["lists"].items():
        path = lay.file(rel)
        splits[split] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            image, _, variant = line.strip().partition(" ")
            if not image:
                continue
            if variant not in index:
                raise DatasetError(f"{path}: variant {variant!r} of image {image} is not in {classes_file.name}")
            splits[split].append(lay.item(images / f"{image}.jpg", index[variant]))
    return tuple(names), splits["train"], splits["test"]


def read_wnids(path: Path) -> dict[str, str]:
    """ImageNet's classnames.txt: "wnid class name" a line, in label order."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        wnid, _, name = line.strip().partition(" ")
        if wnid and not name.strip():
            raise DatasetError(f"{path} line {n}: expected \"wnid class name\", got {line.strip()!r}")
        if wnid:
            out[wnid] = name.strip()
    return out


def _scan(lay: Layout, parent: Path, labels: dict[str, int]) -> list[ImageItem]:
    items: list[ImageItem] = []
    for folder, label in labels.items():
        if not (parent / folder).is_dir():
            raise DatasetError(f"{parent / folder} is missing: coop:{lay.name} needs one folder per class there")
        items.extend(lay.item(f, label) for f in image_files(parent / folder))
    return items


def _match_folders(folders: list[str], wnids: dict[str, str], where: Path, names_file: Path) -> None:
    unknown = [f for f in folders if f not in wnids]
    if unknown:
        raise DatasetError(f"{where / unknown[0]} is not in {names_file}: the class-name file does not match "
                           "the image folders")


def read_imagenet(lay: Layout) -> Splits:
    images = lay.image_dir()
    names_file = lay.file(lay.entry["classes"])
    wnids = read_wnids(names_file)
    train, val = images / "train", images / "val"
    for split in (train, val):
        if not split.is_dir():
            raise DatasetError(f"{split} is missing: coop:imagenet expects images/train/<wnid>/ and "
                               f"images/val/<wnid>/; see {lay.help()}")
    folders = class_dirs(train)
    _match_folders(folders, wnids, train, names_file)
    if len(folders) != len(wnids):
        raise DatasetError(f"{names_file} names {len(wnids)} classes but {train} has {len(folders)} class folders")
    val_folders = class_dirs(val)
    if not val_folders:
        raise DatasetError(f"{val} has no class folders: sort the validation images into <wnid>/ folders "
                           f"as in {lay.help()}")
    _match_folders(val_folders, wnids, val, names_file)
    labels = {wnid: i for i, wnid in enumerate(folders)}
    test = _scan(lay, val, {f: labels[f] for f in val_folders})
    return tuple(wnids[f] for f in folders), _scan(lay, train, labels), test


def read_transfer(lay: Layout) -> Splits:
    images = lay.image_dir()
    own, imagenet = lay.folder / lay.entry["classes"], lay.root / "imagenet" / "classnames.txt"
    names_file = own if own.is_file() else imagenet
    if not names_file.is_file():
        raise DatasetError(f"{own} is missing: copy imagenet/classnames.txt there; see {lay.help()}")
    wnids = read_wnids(names_file)
    if lay.entry["class_folders"] == "index":  # ImageNetV2: folder i is line i of classnames.txt
        order = list(wnids)
        folders = [f for f in class_dirs(images) if f.isdigit()]
        bad = [f for f in folders if int(f) >= len(order)]
        if bad:
            raise DatasetError(f"{images / bad[0]} is beyond the {len(order)} classes of {names_file}")
        test = _scan(lay, images, {f: int(f) for f in sorted(folders, key=int)})
    else:
        order = class_dirs(images)
        _match_folders(order, wnids, images, names_file)
        test = _scan(lay, images, {f: i for i, f in enumerate(order)})
    train = lay.root / "imagenet" / "images" / "train"
    if not train.is_dir():
        raise DatasetError(f"{train} is missing: coop:{lay.name} takes its shots from ImageNet's training "
                           f"set; see {lay.url}#imagenet")
    pool = _scan(lay, train, {wnid: i for i, wnid in enumerate(order)})
    return tuple(wnids[w] for w in order), pool, test


READERS: dict[str, Callable[[Layout], Splits]] = {
    "split": read_split_file, "fgvc": read_fgvc, "imagenet": read_imagenet, "transfer": read_transfer,
}


def build(arg: str, *, shots: int, seed: int, data_root: Path | None = None) -> ClassificationTask:
    table = data_file("coop")
    name = arg.strip().lower().replace("-", "_")
    if name not in table["sets"]:
        raise DatasetError(f"unknown CoOp data set {arg!r}; known: {', '.join(table['sets'])}")
    entry = table["sets"][name]
    if data_root is None:
        raise DatasetError(f"coop:{name} needs --data-root, the folder holding CoOp's data sets; "
                           f"see {table['url']}")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"--data-root {root} is not a folder; see {table['url']}")
    lay = Layout(root, name, entry, table["url"])
    lay.check_folder()
    classes, pool, test = READERS[entry["format"]](lay)
    templates = handwritten_templates(entry.get("templates"), entry.get("fallback_templates", ("a photo of a {}.",)))
    info = TaskInfo(f"coop:{name}", entry["description"], classes, templates)
    return make_task(info, FileImageSource(root), pool, test, shots, seed)
