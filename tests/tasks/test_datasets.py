"""Data set loaders on tiny fixture folders in CoOp's exact on-disk layout (coop:), class folders
(folder:) and manifests (csv:), their errors, and scoring a template on a tiny task by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from promptclimb.tasks import TASKS, build_task
from promptclimb.tasks.classification import ClassificationTask, DatasetError
from promptclimb.tasks.datasets.coop import build as build_coop
from promptclimb.tasks.datasets.folder import build_csv, build_folder
from promptclimb.vlm.zero_shot import ZeroShotScorer

DATASETS_URL = "https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md"


def image(path: Path, colour: tuple[int, int, int] = (120, 30, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path


def write_split(path: Path, classes: list[str], n_train: int, n_val: int, n_test: int,
                name: str = "{cls}/image_{i:04d}.jpg") -> dict[str, list[list[object]]]:
    """A split_zhou file and its images (under the split file's ``images`` sibling given by name)."""
    split: dict[str, list[list[object]]] = {"train": [], "val": [], "test": []}
    i = 0
    for label, cls in enumerate(classes):
        for part, n in (("train", n_train), ("val", n_val), ("test", n_test)):
            for _ in range(n):
                i += 1
                split[part].append([name.format(cls=cls, i=i), label, cls])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split))
    return split


@pytest.fixture
def caltech(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    classes = ["accordion", "face", "soccer_ball"]
    split = write_split(root / "caltech-101" / "split_zhou_Caltech101.json", classes, 12, 3, 4)
    for rows in split.values():
        for rel, _, _ in rows:
            image(root / "caltech-101" / "101_ObjectCategories" / str(rel))
    return root


def coop(name: str, root: Path, shots: int = 2, seed: int = 1) -> ClassificationTask:
    task = build_coop(name, shots=shots, seed=seed, data_root=root)
    assert isinstance(task, ClassificationTask)
    return task


def per_class(items: tuple, label: int) -> int:
    return sum(1 for i in items if i.label == label)


# -- coop: split_zhou sets -------------------------------------------------------------------
def test_caltech101_classes_and_splits(caltech: Path) -> None:
    task = coop("caltech101", caltech, shots=2)
    assert task.class_names == ("accordion", "face", "soccer ball")
    assert task.info.name == "coop:caltech101"
    assert "a photo of a {}." in task.info.handwritten_templates  # clip-benchmark's caltech101 set
    assert [per_class(task.splits["train"], c) for c in range(3)] == [2, 2, 2]
    assert [per_class(task.splits["val"], c) for c in range(3)] == [2, 2, 2]
    split = json.loads((caltech / "caltech-101" / "split_zhou_Caltech101.json").read_text())
    expected_test = [(f"caltech-101/101_ObjectCategories/{p}", y) for p, y, _ in split["test"]]
    assert [(i.id, i.label) for i in task.splits["test"]] == expected_test
    train_pool = {f"caltech-101/101_ObjectCategories/{p}" for p, _, _ in split["train"]}
    assert {i.id for i in (*task.splits["train"], *task.splits["val"])} <= train_pool
    loaded = task.source.load(task.splits["train"][0].id)
    assert loaded.size == (8, 8) and loaded.mode == "RGB"


def test_registered_and_built_by_name(caltech: Path) -> None:
    assert {"coop", "folder", "csv"} <= set(TASKS.names())
    assert all(TASKS.help.get(n) for n in ("coop", "folder", "csv"))
    task = build_task("coop:caltech101", shots=1, seed=0, data_root=caltech)
    assert isinstance(task, ClassificationTask) and len(task.splits["train"]) == 3


def test_same_seed_same_split_other_seed_other_split(caltech: Path) -> None:
    a, b, c = (coop("caltech101", caltech, seed=s) for s in (1, 1, 2))
    assert a.splits == b.splits
    assert a.splits["train"] != c.splits["train"]
    assert a.splits["test"] == c.splits["test"]  # the test split is the file's, whatever the seed


@pytest.mark.parametrize(("shots", "val"), [(1, 1), (4, 4), (8, 4)])
def test_val_is_min_k_4_and_disjoint_from_train(caltech: Path, shots: int, val: int) -> None:
    task = coop("caltech101", caltech, shots=shots)
    assert [per_class(task.splits["train"], c) for c in range(3)] == [shots] * 3
    assert [per_class(task.splits["val"], c) for c in range(3)] == [val] * 3
    train, val_ids = {i.id for i in task.splits["train"]}, {i.id for i in task.splits["val"]}
    test = {i.id for i in task.splits["test"]}
    assert not train & val_ids and not (train | val_ids) & test


def test_oxford_pets(tmp_path: Path) -> None:
    root = tmp_path / "data"
    split = write_split(root / "oxford_pets" / "split_zhou_OxfordPets.json", ["abyssinian", "american_bulldog"],
                        5, 2, 3, name="{cls}_{i}.jpg")
    for rows in split.values():
        for rel, _, _ in rows:
            image(root / "oxford_pets" / "images" / str(rel))
    task = coop("oxford_pets", root, shots=4)
    assert task.class_names == ("abyssinian", "american bulldog")
    assert len(task.splits["train"]) == 8 and len(task.splits["val"]) == 2  # 5 train images: 4 + 1 for val
    assert len(task.splits["test"]) == 6
    assert task.notes  # too few images for 4 shots + 4 val is noted
    assert coop("oxford-pets", root, shots=4).splits == task.splits  # '-' or '_'


def test_dtd_nested_image_folder_is_accepted(tmp_path: Path) -> None:
    root = tmp_path / "data"
    split = write_split(root / "dtd" / "split_zhou_DescribableTextures.json", ["banded", "zigzagged"], 3, 1, 2)
    for rows in split.values():
        for rel, _, _ in rows:
            image(root / "dtd" / "dtd" / "images" / str(rel))
    task = coop("dtd", root, shots=1)
    assert task.splits["test"][0].id.startswith("dtd/dtd/images/banded/")


# -- coop: FGVC-Aircraft's own text files ------------------------------------------------------
@pytest.fixture
def aircraft(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    folder = root / "fgvc_aircraft"
    variants = ["707-320", "A300B4", "F/A-18"]
    folder.mkdir(parents=True)
    (folder / "variants.txt").write_text("\n".join(variants) + "\n")
    n = 1000000
    for split, per in (("train", 4), ("val", 2), ("test", 3)):
        lines = []
        for v in variants:
            for _ in range(per):
                n += 1
                lines.append(f"{n} {v}")
                image(folder / "images" / f"{n}.jpg")
        (folder / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_fgvc_aircraft(aircraft: Path) -> None:
    task = coop("fgvc_aircraft", aircraft, shots=2)
    assert task.class_names == ("707-320", "A300B4", "F/A-18")
    test_lines = (aircraft / "fgvc_aircraft" / "images_variant_test.txt").read_text().split("\n")
    expected = [(f"fgvc_aircraft/images/{line.split(' ')[0]}.jpg", ["707-320", "A300B4", "F/A-18"].index(
        line.split(" ", 1)[1])) for line in test_lines if line]
    assert [(i.id, i.label) for i in task.splits["test"]] == expected
    train_ids = (aircraft / "fgvc_aircraft" / "images_variant_train.txt").read_text()
    assert all(i.id.split("/")[-1][:-4] in train_ids for i in (*task.splits["train"], *task.splits["val"]))


def test_fgvc_variant_not_in_variants_txt(aircraft: Path) -> None:
    lst = aircraft / "fgvc_aircraft" / "images_variant_test.txt"
    lst.write_text(lst.read_text() + "1999999 Boeing 747\n")
    with pytest.raises(DatasetError, match=r"'Boeing 747'.*not in variants\.txt"):
        coop("fgvc_aircraft", aircraft)


# -- coop: ImageNet and its transfer sets ----------------------------------------------------
WNIDS = {"n01440764": "tench", "n01443537": "goldfish", "n01484850": "great white shark"}


@pytest.fixture
def imagenet(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    folder = root / "imagenet"
    folder.mkdir(parents=True)
    (folder / "classnames.txt").write_text("".join(f"{w} {n}\n" for w, n in WNIDS.items()))
    for wnid in WNIDS:
        for i in range(6):
            image(folder / "images" / "train" / wnid / f"{wnid}_{i}.JPEG")
        for i in range(2):
            image(folder / "images" / "val" / wnid / f"ILSVRC2012_val_{wnid}_{i}.JPEG")
    return root


def test_imagenet(imagenet: Path) -> None:
    task = coop("imagenet", imagenet, shots=3)
    assert task.class_names == ("tench", "goldfish", "great white shark")
    assert [per_class(task.splits["train"], c) for c in range(3)] == [3, 3, 3]
    assert [per_class(task.splits["val"], c) for c in range(3)] == [3, 3, 3]
    assert all(i.id.startswith("imagenet/images/train/") for i in task.splits["train"])
    assert len(task.splits["test"]) == 6
    assert all(i.id.startswith(f"imagenet/images/val/{list(WNIDS)[i.label]}/") for i in task.splits["test"])


def test_imagenet_a_takes_shots_from_imagenet(imagenet: Path) -> None:
    folder = imagenet / "imagenet-adversarial"
    subset = ["n01443537", "n01484850"]  # a 200-class subset in the real thing
    for wnid in subset:
        for i in range(3):
            image(folder / "imagenet-a" / wnid / f"a_{i}.jpg")
    (folder / "imagenet-a" / "README.txt").write_text("not a class")
    (folder / "classnames.txt").write_text((imagenet / "imagenet" / "classnames.txt").read_text())
    task = coop("imagenet_a", imagenet, shots=2)
    assert task.class_names == ("goldfish", "great white shark")
    assert all(i.id.startswith(f"imagenet/images/train/{subset[i.label]}/") for i in task.splits["train"])
    assert len(task.splits["train"]) == 4
    assert sorted(i.id for i in task.splits["test"]) == sorted(
        f"imagenet-adversarial/imagenet-a/{w}/a_{i}.jpg" for w in subset for i in range(3))
    assert all(i.id.split("/")[2] == subset[i.label] for i in task.splits["test"])


def test_imagenetv2_folders_are_class_indices(imagenet: Path) -> None:
    folder = imagenet / "imagenetv2" / "imagenetv2-matched-frequency-format-val"
    for label in range(3):
        image(folder / str(label) / "x.jpeg")
    # no imagenetv2/classnames.txt: the loader falls back to imagenet/classnames.txt
    task = coop("imagenetv2", imagenet, shots=1)
    assert task.class_names == tuple(WNIDS.values())
    assert [(i.id.split("/")[-2], i.label) for i in task.splits["test"]] == [("0", 0), ("1", 1), ("2", 2)]


def test_transfer_set_without_imagenet_train(tmp_path: Path) -> None:
    folder = tmp_path / "imagenet-sketch"
    image(folder / "images" / "n01440764" / "s.jpg")
    (folder / "classnames.txt").write_text("n01440764 tench\n")
    with pytest.raises(DatasetError, match=r"imagenet/images/train is missing.*shots from ImageNet"):
        coop("imagenet_sketch", tmp_path)


def test_imagenet_class_names_must_match_folders(imagenet: Path) -> None:
    image(imagenet / "imagenet" / "images" / "train" / "n09999999" / "x.JPEG")
    with pytest.raises(DatasetError, match=r"n09999999 is not in .*classnames\.txt"):
        coop("imagenet", imagenet)


def test_imagenet_extra_class_name(imagenet: Path) -> None:
    names = imagenet / "imagenet" / "classnames.txt"
    names.write_text(names.read_text() + "n09999999 volcano\n")
    with pytest.raises(DatasetError, match=r"names 4 classes but .* has 3 class folders"):
        coop("imagenet", imagenet)


def test_imagenet_flat_val_folder(imagenet: Path) -> None:
    val = imagenet / "imagenet" / "images" / "val"
    shutil.rmtree(val)
    image(val / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(DatasetError, match=r"no class folders: sort the validation images"):
        coop("imagenet", imagenet)


# -- coop: bad input ---------------------------------------------------------------------------
def test_missing_data_root() -> None:
    with pytest.raises(DatasetError, match=r"coop:caltech101 needs --data-root"):
        build_coop("caltech101", shots=1, seed=0, data_root=None)


def test_unknown_coop_name(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"unknown CoOp data set 'cifar10'; known: imagenet, caltech101"):
        coop("cifar10", tmp_path)


def test_missing_data_set_folder_names_layout_and_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        coop("caltech101", tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert "caltech-101/101_ObjectCategories/, caltech-101/split_zhou_Caltech101.json" in message
    assert f"{DATASETS_URL}#caltech101" in message


def test_missing_split_file_is_named(caltech: Path) -> None:
    (caltech / "caltech-101" / "split_zhou_Caltech101.json").unlink()
    with pytest.raises(DatasetError, match=r"split_zhou_Caltech101\.json is missing"):
        coop("caltech101", caltech)


def test_missing_image_folder_is_named(caltech: Path) -> None:
    (caltech / "caltech-101" / "101_ObjectCategories").rename(caltech / "caltech-101" / "images")
    with pytest.raises(DatasetError, match=r"caltech-101/101_ObjectCategories is missing"):
        coop("caltech101", caltech)


def test_images_elsewhere_than_the_split_says(caltech: Path) -> None:
    objects = caltech / "caltech-101" / "101_ObjectCategories"
    (objects / "accordion").rename(objects / "Accordion")
    with pytest.raises(DatasetError, match=r"first training image of split_zhou_Caltech101\.json\) is missing"):
        coop("caltech101", caltech)


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda s: s["train"].append(["x/1.jpg", 5, "xylophone"]), r"labels are not 0\.\.3"),
    (lambda s: s["test"].append(["x/1.jpg", 0, "banjo"]), r"label 0 is both 'accordion' and 'banjo'"),
    (lambda s: s["val"].append(["x/1.jpg"]), r"is not \[path, label, class name\]"),
])
def test_split_file_that_does_not_hold_together(caltech: Path, edit, fragment: str) -> None:
    path = caltech / "caltech-101" / "split_zhou_Caltech101.json"
    split = json.loads(path.read_text())
    edit(split)
    path.write_text(json.dumps(split))
    with pytest.raises(DatasetError, match=fragment):
        coop("caltech101", caltech)


# -- folder: and csv: ----------------------------------------------------------------------------
def test_folder_held_out(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    for cls in ("golden_retriever", "sea-lion", "cat"):
        for i in range(10):
            image(root / cls / f"{i}.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    task = build_folder(str(root), shots=2, seed=0)
    assert task.class_names == ("cat", "golden retriever", "sea lion")
    assert [per_class(task.splits["test"], c) for c in range(3)] == [4, 4, 4]  # 40% of 10
    assert [per_class(task.splits["train"], c) for c in range(3)] == [2, 2, 2]
    assert all(not i.id.endswith(".txt") for s in task.splits.values() for i in s)
    other_seed = build_folder(str(root), shots=2, seed=1)
    assert other_seed.splits["test"] == task.splits["test"] and other_seed.splits["train"] != task.splits["train"]


def test_folder_train_test_layout_relative_to_data_root(tmp_path: Path) -> None:
    for part, n in (("train", 5), ("test", 2)):
        for cls in ("ant", "bee"):
            for i in range(n):
                image(tmp_path / "bugs" / part / cls / f"{i}.jpg")
    task = build_folder("bugs", shots=3, seed=0, data_root=tmp_path)
    assert task.class_names == ("ant", "bee")
    assert sorted(i.id for i in task.splits["test"]) == [f"test/{c}/{i}.jpg" for c in ("ant", "bee") for i in range(2)]
    assert all(i.id.startswith("train/") for i in (*task.splits["train"], *task.splits["val"]))


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda root: None, r"is not a folder: folder:PATH wants PATH/<class name>/<images>"),
    (lambda root: root.mkdir(), r"has no class sub-folders"),
    (lambda root: (root / "empty").mkdir(parents=True), r"empty holds no images"),
])
def test_folder_errors(tmp_path: Path, make, fragment: str) -> None:
    make(tmp_path / "imgs")
    with pytest.raises(DatasetError, match=fragment):
        build_folder(str(tmp_path / "imgs"), shots=1, seed=0)


def test_folder_test_class_not_in_train(tmp_path: Path) -> None:
    image(tmp_path / "train" / "ant" / "0.jpg")
    image(tmp_path / "test" / "wasp" / "0.jpg")
    with pytest.raises(DatasetError, match=r"test/wasp has no match"):
        build_folder(str(tmp_path), shots=1, seed=0)


def write_manifest(folder: Path, rows: list[str], names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if names is not None:
        (folder / "classnames.txt").write_text("\n".join(names) + "\n")
    path = folder / "labels.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_with_split_column_and_mixed_labels(tmp_path: Path) -> None:
    rows = ["path,label,split"]
    for i in range(6):
        rows.append(f"img/a{i}.png,0,{'test' if i < 2 else 'train'}")
        rows.append(f"img/b{i}.png,black bear,{'test' if i < 2 else 'train'}")
    for i in range(6):
        image(tmp_path / "set" / "img" / f"a{i}.png")
        image(tmp_path / "set" / "img" / f"b{i}.png")
    path = write_manifest(tmp_path / "set", rows, ["brown bear", "black bear"])
    task = build_csv(str(path), shots=2, seed=0)
    assert task.class_names == ("brown bear", "black bear")
    assert sorted((i.id, i.label) for i in task.splits["test"]) == [
        ("img/a0.png", 0), ("img/a1.png", 0), ("img/b0.png", 1), ("img/b1.png", 1)]
    assert [per_class(task.splits["train"], c) for c in range(2)] == [2, 2]
    assert task.source.load("img/b3.png").size == (8, 8)


def test_csv_without_split_holds_out(tmp_path: Path) -> None:
    rows = ["path,label"] + [f"{c}{i}.jpg,{c}" for c in "xy" for i in range(10)]
    task = build_csv(str(write_manifest(tmp_path, rows, ["x", "y"])), shots=1, seed=0)
    assert [per_class(task.splits["test"], c) for c in range(2)] == [4, 4]


@pytest.mark.parametrize(("rows", "names", "fragment"), [
    (["path,label", "a.jpg,2"], ["x", "y"], r"line 2: label 2 is outside the 2 names in classnames\.txt"),
    (["path,label", "a.jpg,zebra"], ["x", "y"], r"label 'zebra' is neither a name"),
    (["path,label", "a.jpg,x"], ["x", "y"], r"names 2 classes but .* uses 1 of them"),
    (["file,class", "a.jpg,x"], ["x"], r"it needs path,label"),
    (["path,label,split", "a.jpg,x,dev"], ["x"], r"split 'dev' is not train, val or test"),
    (["path,label,split", "a.jpg,x,train"], ["x"], r"no row with split=test"),
    (["path,label", "a.jpg,x"], ["x", "x"], r"lists 'x' twice"),
    (["path,label", "a.jpg,x"], None, r"classnames\.txt is missing"),
])
def test_csv_errors(tmp_path: Path, rows: list[str], names: list[str] | None, fragment: str) -> None:
    path = write_manifest(tmp_path, rows, names)
    with pytest.raises(DatasetError, match=fragment):
        build_csv(str(path), shots=1, seed=0)


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.csv does not exist: csv:FILE wants a CSV with columns"):
        build_csv(str(tmp_path / "nope.csv"), shots=1, seed=0)


# -- scoring a template on a tiny task, by hand ----------------------------------------------
TEXTS = {
    "a photo of a cat.": (1.0, 0.0), "a photo of a dog.": (0.0, 1.0),
    "a drawing of a cat.": (1.0, 0.0), "a drawing of a dog.": (3.0, 4.0),  # normalised: (0.6, 0.8)
}


class ColourBackbone:
    """Images embed as their mean (red, green); texts as the vectors in ``TEXTS``."""

    id = "colour-test"
    preprocess_id = "mean-rg"
    description = "a hand-made backbone for tests"

    def encode_images(self, images: list) -> np.ndarray:
        return np.array([np.asarray(im, dtype=np.float32).reshape(-1, 3).mean(axis=0)[:2] for im in images])

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return np.array([TEXTS[t] for t in texts], dtype=np.float32)


@pytest.fixture
def scorer(tmp_path: Path) -> ZeroShotScorer:
    root = tmp_path / "pets"
    # (red, green) of each test image; cat wins a template when red/green beats its threshold:
    # "photo": 1, "drawing": 2 (cat [1,0] vs dog [0.6,0.8]), both: 0.684 r > 0.949 g, i.e. 1.387.
    tests = {"cat": [(255, 0), (200, 120)], "dog": [(0, 255), (120, 100)]}
    for cls, colours in tests.items():
        image(root / "train" / cls / "0.png")
        for i, (r, g) in enumerate(colours):
            image(root / "test" / cls / f"{i}.png", (r, g, 0))
    task = build_folder(str(root), shots=1, seed=0)
    return ZeroShotScorer("hand", ColourBackbone(), task, tmp_path / "cache")


def test_one_template_accuracy_by_hand(scorer: ZeroShotScorer) -> None:
    # test order: cat/0 (255,0) cat/1 (200,120) dog/0 (0,255) dog/1 (120,100)
    photo = scorer.score("a photo of a {}.", "test")
    assert photo.per_item == (1.0, 1.0, 1.0, 0.0)  # dog/1 is redder than green: called a cat
    assert photo.value == pytest.approx(0.75)
    assert photo.per_class == {"cat": 1.0, "dog": 0.5}
    drawing = scorer.score("a drawing of a {}.", "test")
    assert drawing.per_item == (1.0, 0.0, 1.0, 1.0)  # 200 < 2 * 120: cat/1 called a dog
    assert drawing.per_class == {"cat": 0.5, "dog": 1.0}


def test_ensemble_by_hand(scorer: ZeroShotScorer) -> None:
    both = scorer.score_ensemble(["a photo of a {}.", "a drawing of a {}."], "test")
    # weights: cat [1, 0]; dog = normalise([0, 1] + [0.6, 0.8]) = [0.316, 0.949]: cat iff r > 1.387 g
    assert both.per_item == (1.0, 1.0, 1.0, 1.0)  # 200 > 1.387 * 120 and 120 < 1.387 * 100: beats both
    assert both.value == pytest.approx(1.0)
    assert both.per_class == {"cat": 1.0, "dog": 1.0}
    # without normalising each template first, dog would be normalise([3, 5]) and cat/1 a dog
    assert scorer.score_ensemble(["a photo of a {}."], "test") == scorer.score("a photo of a {}.", "test")
