"""Scorer speed (issue 3): what scoring a template costs beyond encoding its prompts.

With cached image features for ``--images`` images (random unit vectors: the image side is timed
separately) and ``--classes`` class names, it reports

- overhead_ratio: time to score a NEW template / time for the backbone alone to encode its filled
  prompts (median over ``--repeats`` templates, measured interleaved; goal < 1.10);
- seen_template_ms: time to score a template already seen (goal < 1 ms);
- images_per_s: first-time image feature extraction (load, preprocess, batched encode) on real
  images from ``--real-images`` (default: the tuxpaint stamps, if installed; else synthetic).

Human-readable lines first; the last line is one JSON object. Usage:
``python benchmarks/scorer_speed.py [--scorer conse | --scorer open_clip:ViT-B-32/random]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb.candidate import Candidate
from promptclimb.tasks.base import TaskInfo
from promptclimb.tasks.classification import ClassificationTask, FileImageSource, ImageItem, clip_benchmark_file
from promptclimb.vlm import build_scorer
from promptclimb.vlm.features import FeatureCache, cache_key
from promptclimb.vlm.zero_shot import ZeroShotScorer, normalise

ADJECTIVES = ("a photo", "a blurry photo", "a sketch", "a close-up photo", "a painting", "a cropped photo",
              "a bright photo", "a dark photo", "a pixelated photo", "a rendering", "a tattoo", "an origami")


@dataclass
class NoPixels:
    """The benchmark's 5000-image split never loads pixels: its features are put in the cache."""

    fingerprint: str = "bench:random-features"

    def load(self, item_id: str) -> Any:
        raise AssertionError(f"image {item_id} should have come from the feature cache")


def class_names(n: int) -> tuple[str, ...]:
    try:
        names = list(clip_benchmark_file("classnames")["imagenet1k"])
    except Exception:  # clip-benchmark missing: made-up names still give prompts of realistic length
        names = []
    names = list(dict.fromkeys(names))[:n]  # ImageNet repeats a few names
    return (*names, *(f"object number {i}" for i in range(len(names), n)))


def scoring_task(n_classes: int, n_images: int) -> ClassificationTask:
    names = class_names(n_classes)
    labels = np.random.default_rng(0).integers(0, len(names), n_images)
    items = tuple(ImageItem(f"img/{i}", int(c)) for i, c in enumerate(labels))
    info = TaskInfo("bench", "random features", names)
    return ClassificationTask(info, NoPixels(), {"train": items, "val": (), "test": ()}, shots=0, seed=0)


def prefill_features(scorer: ZeroShotScorer, cache: Path, dim: int) -> None:
    task = scorer.task
    items = task.splits["train"]
    key = cache_key(backbone=scorer.backbone.id, preprocess=scorer.backbone.preprocess_id,
                    source=task.source.fingerprint, split=task.split_key("train"))
    feats = normalise(np.random.default_rng(1).standard_normal((len(items), dim)))
    FeatureCache(cache).save(key, [i.id for i in items], feats)


def real_images(folder: Path | None, n: int, scratch: Path) -> tuple[Path, list[str], str]:
    if folder is not None and folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:n]
        if files:
            return folder, [str(p.relative_to(folder)) for p in files], f"{len(files)} images from {folder}"
    from PIL import Image

    rng = np.random.default_rng(2)
    for i in range(n):
        size = (int(rng.integers(200, 500)), int(rng.integers(200, 500)))
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(scratch / f"{i}.jpg")
    return scratch, [f"{i}.jpg" for i in range(n)], f"{n} synthetic noise images"


def extraction_rate(spec: str, options: dict[str, Any], folder: Path, ids: list[str], cache: Path) -> float:
    info = TaskInfo("bench-images", "real images", ("thing", "other thing"))
    items = tuple(ImageItem(i, k % 2) for k, i in enumerate(ids))
    task = ClassificationTask(info, FileImageSource(folder), {"train": items}, shots=0, seed=0)
    scorer = build_scorer(spec, task=task, cache_dir=cache, options=options)
    assert isinstance(scorer, ZeroShotScorer)
    scorer.backbone.encode_images([task.source.load(ids[0])])  # load the models first: not part of the rate
    start = time.perf_counter()
    scorer.image_features("train")
    return len(ids) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scorer", default="conse")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--real-images", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    parser.add_argument("--n-real", type=int, default=300)
    args = parser.parse_args()
    options = {"batch_size": args.batch_size}

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scorer = build_scorer(args.scorer, task=scoring_task(args.classes, args.images), cache_dir=root / "c",
                              options=options)
        assert isinstance(scorer, ZeroShotScorer), "the benchmark times ZeroShotScorer backbones"
        backbone, names = scorer.backbone, list(scorer.task.class_names)
        dim = backbone.encode_texts(["warm up the text encoder"]).shape[1]
        prefill_features(scorer, root / "c", dim)
        scorer.score("a warm-up template for {}", "train")  # loads the cached image features
        print(f"scorer: {scorer.description}")
        print(f"task: {len(names)} classes, {args.images} images with cached {dim}-d features")

        encode_s, score_s, inner_s = [], [], []
        bare_encode = backbone.encode_texts

        def timed_encode(texts: list[str]) -> np.ndarray:  # the encoding done inside score()
            start = time.perf_counter()
            try:
                return bare_encode(texts)
            finally:
                inner_s.append(time.perf_counter() - start)

        setattr(backbone, "encode_texts", timed_encode)  # noqa: B010  (an instance attribute shadows the method)
        templates = [f"{ADJECTIVES[k % len(ADJECTIVES)]} of the {{}}, variant {k}." for k in range(args.repeats)]
        for k, template in enumerate(templates):
            prompts = [Candidate(template).fill(n) for n in names]
            start = time.perf_counter()
            bare_encode(prompts)
            encode_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            scorer.score(template, "train")
            score_s.append(time.perf_counter() - start)
            print(f"  template {k}: encode {encode_s[-1]:.3f} s, score {score_s[-1]:.3f} s "
                  f"({score_s[-1] / encode_s[-1]:.3f}x); in score: encode {inner_s[-1]:.3f} s, "
                  f"the rest {1000 * (score_s[-1] - inner_s[-1]):.1f} ms")
        ratio = statistics.median(s / e for s, e in zip(score_s, encode_s, strict=True))
        rest_ms = 1000 * statistics.median(s - i for s, i in zip(score_s, inner_s, strict=True))
        delattr(backbone, "encode_texts")

        n_seen = 2000
        start = time.perf_counter()
        for _ in range(n_seen):
            scorer.score(templates[0], "train")
        seen_ms = (time.perf_counter() - start) / n_seen * 1000

        scratch = root / "images"
        scratch.mkdir()
        folder, ids, what = real_images(args.real_images, args.n_real, scratch)
        rate = extraction_rate(args.scorer, options, folder, ids, root / "c2")

    print(f"new template: median encode {statistics.median(encode_s):.3f} s, median score "
          f"{statistics.median(score_s):.3f} s, overhead_ratio {ratio:.3f} (goal < 1.10); score() minus its own "
          f"encoding: {rest_ms:.1f} ms")
    print(f"seen template: {seen_ms:.4f} ms (goal < 1 ms)")
    print(f"image features, first time: {rate:.1f} images/s on {what}, batch {args.batch_size}")
    print(json.dumps({"overhead_ratio": round(ratio, 4), "seen_template_ms": round(seen_ms, 5),
                      "images_per_s": round(rate, 2), "scorer": args.scorer,
                      "non_encoding_ms": round(rest_ms, 2)}))


if __name__ == "__main__":
    main()
