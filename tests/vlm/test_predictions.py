"""predictions scorer: a callable and a real HTTP endpoint, checked against hand counts; failures and outages."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from promptclimb.tasks.classification import ClassificationTask
from promptclimb.vlm import ScorerConfigError, ScorerError, build_scorer
from promptclimb.vlm.predictions import ImageRef


def colour_of(image: Any, palette: np.ndarray) -> int:
    """The class whose colour is nearest the image's mean colour (always right on the fixture images)."""
    mean = np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    return int(np.argmin(((palette - mean) ** 2).sum(axis=1)))


def test_callable_accuracy_matches_a_hand_count(task: ClassificationTask, tmp_path: Path, palette: np.ndarray) -> None:
    calls: list[str] = []

    def predict(template: str, class_names: list[str], images: list[ImageRef]) -> list[Any]:
        calls.append(template)
        if "photo" in template:  # right for every image, answering with names
            return [class_names[colour_of(ref.image(), palette)] for ref in images]
        return [0 if ref.id.endswith("0.png") else 1 for ref in images]  # indices

    scorer = build_scorer("predictions", task=task, cache_dir=tmp_path, options={"predict": predict})
    assert scorer.score("a photo of a {}.", "train").value == 1.0
    # train holds 2 images per class; "0.png" -> class 0, else class 1: right for red apple's 0.png (if sampled)
    # and for every green leaf image except a 0.png one.
    items = task.splits["train"]
    hand = sum((i.label == 0 and i.id.endswith("0.png")) or (i.label == 1 and not i.id.endswith("0.png"))
               for i in items)
    score = scorer.score("a {}", "train")
    assert score.value == hand / len(items)
    assert "mean_margin" not in score.metrics
    assert score.per_class is not None and score.per_class["blue sky"] == 0.0
    scorer.score("a {}", "train")
    assert calls == ["a photo of a {}.", "a {}"]  # cached per (template, split)
    scorer.score("a {}", "test")
    assert calls[-1] == "a {}"


def test_unknown_names_are_wrong_and_bad_indices_fail(task: ClassificationTask, tmp_path: Path) -> None:
    def predict(template: str, class_names: list[str], images: list[ImageRef]) -> list[Any]:
        if "index" in template:
            return [len(class_names)] * len(images)
        return ["Red Apple"] + ["no idea"] * (len(images) - 1)

    scorer = build_scorer("predictions", task=task, cache_dir=tmp_path, options={"predict": predict})
    score = scorer.score("{} by name", "test")
    labels = [i.label for i in task.splits["test"]]
    assert score.value == (labels[0] == 0) / len(labels)
    assert score.metrics["unknown_predictions"] == len(labels) - 1
    with pytest.raises(ScorerError, match=r"outside 0\.\.3"):
        scorer.score("{} by index", "test")


def test_module_function_spec(task: ClassificationTask, tmp_path: Path) -> None:
    scorer = build_scorer(f"predictions:{__name__}:always_first", task=task, cache_dir=tmp_path,
                          options={})
    assert scorer.score("a {}", "test").value == 0.25
    with pytest.raises(ScorerConfigError, match="cannot import"):
        build_scorer("predictions:no_such_module_here:predict", task=task, cache_dir=tmp_path, options={})
    with pytest.raises(ScorerConfigError, match="needs a predictor"):
        build_scorer("predictions", task=task, cache_dir=tmp_path, options={})


def always_first(template: str, class_names: list[str], images: list[ImageRef]) -> list[int]:
    return [0] * len(images)


class Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    palette = np.zeros((0, 3))

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.requests.append(body)
        if "boom" in body["template"]:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"model crashed")
            return
        from PIL import Image

        images = [Image.open(io.BytesIO(base64.b64decode(im["png_base64"]))) for im in body["images"]]
        photo = "photo" in body["template"]
        preds = [body["class_names"][colour_of(im, self.palette)] if photo else 2 for im in images]
        data = json.dumps({"predictions": preds}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server(palette: np.ndarray) -> Iterator[str]:
    Handler.requests, Handler.palette = [], palette
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/predict"
    httpd.shutdown()
    httpd.server_close()


def test_http_endpoint(task: ClassificationTask, tmp_path: Path, server: str) -> None:
    scorer = build_scorer(f"predictions:{server}", task=task, cache_dir=tmp_path, options={"batch_size": 3})
    assert scorer.score("a photo of a {}.", "test").value == 1.0
    score = scorer.score("a {}", "test")
    labels = [i.label for i in task.splits["test"]]
    assert score.value == labels.count(2) / len(labels)  # always "blue sky"
    assert score.per_class == {"red apple": 0.0, "green leaf": 0.0, "blue sky": 1.0, "yellow sun": 0.0}
    first = Handler.requests[0]
    assert set(first) == {"template", "class_names", "images"} and first["class_names"] == list(task.class_names)
    assert [im["id"] for im in first["images"]] == [i.id for i in task.splits["test"][:3]]  # batches of 3
    assert len(Handler.requests) == 2 * 3  # 8 test images in batches of 3, two templates
    with pytest.raises(ScorerError, match="answered 500"):
        scorer.score("boom {}", "test")


def test_unreachable_endpoint_is_a_config_error(task: ClassificationTask, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ScorerConfigError, match=f"127.0.0.1:{port}/p is unreachable") as err:
        build_scorer(f"predictions:http://127.0.0.1:{port}/p", task=task, cache_dir=tmp_path, options={})
    assert "\n" not in str(err.value)


def test_rows_are_predicted_once_each_and_match_the_full_score(task: ClassificationTask, tmp_path: Path) -> None:
    sent: list[str] = []

    def predict(template: str, class_names: list[str], images: list[ImageRef]) -> list[Any]:
        sent.extend(ref.id for ref in images)
        return [0 if ref.id.endswith("0.png") else 1 for ref in images]

    scorer = build_scorer("predictions", task=task, cache_dir=tmp_path, options={"predict": predict})
    items = task.splits["train"]
    assert scorer.split_labels("train") == tuple(i.label for i in items)  # type: ignore[attr-defined]
    part = scorer.score_rows("a {}", "train", [2, 0])  # type: ignore[attr-defined]
    assert sent == [items[2].id, items[0].id] and part.labels == (items[2].label, items[0].label)
    full = scorer.score("a {}", "train")
    assert sorted(sent) == sorted(i.id for i in items)  # the two rows were not sent again
    assert part.per_item == (full.per_item[2], full.per_item[0])
