"""Text-to-image prompt optimization (the second half of Liu et al., CVPR 2024): the same
conversation, aimed at a black-box image generator. A multimodal judge looks at each generated
image and says in words what is wrong; a similarity backbone adds a number; an LLM (or the judge
itself) writes the next prompt. Three tasks run through the same Study and Store: generation
(intent in words -> prompt), inversion (reference image -> prompt) and personalization (an
inverted prompt + an edit -> images).

Backends by name, as data (heavy ones import only when chosen).
"""

from __future__ import annotations

from typing import Any

from promptclimb.registry import Registry

GENERATORS: Registry[Any] = Registry(
    "image generator",
    {
        "openai": "promptclimb.t2i.generators:build",
        "diffusers": "promptclimb.t2i.diffusers_backend:build",
        "fake": "promptclimb.t2i.fake:build_generator",
    },
    help={
        "openai": "OpenAI images API or any compatible endpoint: openai:dall-e-3, openai:gpt-image-1",
        "diffusers": "a local Hugging Face diffusers pipeline: diffusers:MODEL_ID_OR_FOLDER (optional install)",
        "fake": "draws colour and shape words in-process (tests)",
    },
)

JUDGES: Registry[Any] = Registry(
    "judge",
    {
        "openai": "promptclimb.t2i.judges:build_openai",
        "scripted": "promptclimb.t2i.judges:build_scripted",
    },
    help={
        "openai": "a multimodal chat model on any OpenAI-compatible endpoint: openai:gpt-4o",
        "scripted": "the toy judge that reads fake pictures, or scripted:FILE of JSON replies (tests)",
    },
)

SIMILARITIES: Registry[Any] = Registry(
    "similarity backbone",
    {
        "conse": "promptclimb.t2i.similarity:build_conse",
        "open_clip": "promptclimb.t2i.similarity:build_open_clip",
        "histogram": "promptclimb.t2i.similarity:build_histogram",
    },
    help={
        "conse": "embedded offline ConSE (EfficientNet-Lite0 + MiniLM): coarse, no download",
        "open_clip": "open_clip:ARCH/TAG, e.g. open_clip:ViT-B-32/laion2b_s34b_b79k (weights installed)",
        "histogram": "palette colour histograms (tests)",
    },
)

T2I_METHODS: Registry[Any] = Registry(
    "text-to-image method",
    {
        "hill_climb": "promptclimb.t2i.proposer:build_hill_climb",
        "judge": "promptclimb.t2i.proposer:build_judge_revise",
    },
    help={
        "hill_climb": "an LLM conversation fed the judge's feedback and the similarity (default)",
        "judge": "the judge's own revised prompt, from the best image so far (the paper's GPT-4V loop)",
    },
)

__all__ = ["GENERATORS", "JUDGES", "SIMILARITIES", "T2I_METHODS"]
