"""Image feature extraction speed (issue 20): promptclimb against CLIP_benchmark's own pipeline.

Both extract features of the same images (``--images`` JPEGs, written once to an ImageFolder
layout) with the same random-weight open_clip ViT-B-32 (``pretrained=None`` builds offline), the
same batch size and the same number of DataLoader workers, on this machine:

- promptclimb: ``ZeroShotScorer.image_features`` with an empty feature cache (decode and preprocess
  in worker processes, stacked batches, encode, normalise, write the cache);
- CLIP_benchmark: its builder's ``ImageFolder(transform=preprocess)``, a ``DataLoader`` with its
  collate function, and ``run_classification`` (encode, normalise, logits), ``amp`` off as on CPU.

The two run interleaved ``--repeats`` times, in alternating order so that a drifting machine load
favours neither (after one untimed warm-up round); the ratio is the
median of promptclimb's rate over CLIP_benchmark's in each round (goal >= 1.0). Human-readable
lines first; the last line is one JSON object. Usage: ``python benchmarks/feature_speed.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb.tasks.base import TaskInfo
from promptclimb.tasks.classification import ClassificationTask, FileImageSource, ImageItem
from promptclimb.vlm.extraction import default_workers
from promptclimb.vlm.open_clip_backbone import OpenClipBackbone, parse_spec
from promptclimb.vlm.torch_compat import ensure_torchvision_importable
from promptclimb.vlm.zero_shot import ZeroShotScorer

CLASSES = ("gradient", "stripes")


def write_images(root: Path, n: int) -> list[ImageItem]:
    """Smooth, noisy RGB JPEGs of ImageNet-like sizes, in root/CLASS/i.jpg."""
    from PIL import Image

    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        label = i % len(CLASSES)
        w, h = int(rng.integers(400, 640)), int(rng.integers(300, 480))
        yy, xx = np.mgrid[0:h, 0:w]
        base = (xx * (1 + label * 6) / w * 255 + yy / h * 128) % 255
        pixels = np.stack([base, base[::-1], np.roll(base, i, axis=1)], axis=-1) + rng.normal(0, 12, (h, w, 3))
        folder = root / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=90)
        items.append(ImageItem(f"{CLASSES[label]}/{i:05d}.jpg", label))
    return items


def promptclimb_rate(backbone: OpenClipBackbone, root: Path, items: list[ImageItem], cache: Path,
                     batch_size: int, workers: int) -> float:
    info = TaskInfo("speed", "feature speed images", CLASSES, ("a photo of a {}.",))
    task = ClassificationTask(info, FileImageSource(root), {"test": tuple(items)}, shots=0, seed=0)
    scorer = ZeroShotScorer("open_clip:ViT-B-32/random", backbone, task, cache, batch_size=batch_size,
                            workers=workers)
    start = time.perf_counter()
    feats, _ = scorer.image_features("test")
    seconds = time.perf_counter() - start
    assert feats.shape[0] == len(items)
    return len(items) / seconds


def clip_benchmark_rate(backbone: OpenClipBackbone, root: Path, n: int, batch_size: int, workers: int) -> float:
    import torch
    from clip_benchmark.datasets.builder import ImageFolder, get_dataset_collate_fn
    from clip_benchmark.metrics.zeroshot_classification import run_classification

    dataset = ImageFolder(root=str(root), transform=backbone.preprocess)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                                         collate_fn=get_dataset_collate_fn("imagenet-r"))
    classifier = torch.zeros(backbone.model.visual.output_dim, len(CLASSES))
    start = time.perf_counter()
    logits, _ = run_classification(backbone.model, classifier, loader, backbone.device, amp=False)
    seconds = time.perf_counter() - start
    assert logits.shape[0] == n
    return n / seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64, help="CLIP_benchmark's default")
    p.add_argument("--workers", type=int, default=default_workers(), help="promptclimb's default")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")  # run_classification's own bar
    ensure_torchvision_importable()
    backbone = OpenClipBackbone(parse_spec("ViT-B-32/random"), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        items = write_images(root, args.images)
        cb_items = sorted(items, key=lambda i: i.id)  # ImageFolder's order: the same files either way
        rounds = []
        for r in range(args.repeats + 1):
            ours = partial(promptclimb_rate, backbone, root, cb_items, Path(tmp) / f"cache{r}", args.batch_size,
                           args.workers)
            theirs = partial(clip_benchmark_rate, backbone, root, len(items), args.batch_size, args.workers)
            first, second = (ours, theirs) if r % 2 else (theirs, ours)  # alternate: load drift cancels
            rates = {first: first(), second: second()}
            ours_rate, theirs_rate = rates[ours], rates[theirs]
            if r:  # round 0 warms both up
                rounds.append((ours_rate, theirs_rate))
                print(f"round {r}: promptclimb {ours_rate:.2f} images/s, CLIP_benchmark {theirs_rate:.2f} images/s")
    result = {
        "images": args.images, "batch_size": args.batch_size, "workers": args.workers, "device": backbone.device,
        "promptclimb_images_per_s": round(statistics.median(o for o, _ in rounds), 2),
        "clip_benchmark_images_per_s": round(statistics.median(t for _, t in rounds), 2),
        "ratio": round(statistics.median(o / t for o, t in rounds), 3),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
