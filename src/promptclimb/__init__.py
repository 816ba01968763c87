"""promptclimb: LLMs as black-box optimizers of prompts for vision-language models.

The public API: build a run from a RunConfig (``start_run``), or assemble a Study yourself from a
Proposer, a Scorer, a ChatLLM and a RunStore, and drive it with ``optimize`` or ``ask``/``tell``.
"""

from promptclimb.candidate import (
    Candidate,
    CandidateRejected,
    ParseResult,
    Score,
    Trial,
    TrialState,
    parse_candidates,
    parse_template,
)
from promptclimb.config import BudgetConfig, ConfigError, RunConfig
from promptclimb.llm import LLMS, ChatLLM, ChatReply, ChatRequest, Message, build_llm
from promptclimb.proposers import METHODS, Proposal, Proposer, build_method
from promptclimb.registry import Registry, UnknownNameError
from promptclimb.run import build_parts, resume_run, start_run
from promptclimb.store import RunStore, StoreError
from promptclimb.study import Budget, Study, StudyResult
from promptclimb.tasks import TASKS, TaskInfo, build_task
from promptclimb.vlm import SCORERS, Scorer, build_scorer

__version__ = "0.1.0"

__all__ = [
    "LLMS", "METHODS", "SCORERS", "TASKS", "Budget", "BudgetConfig", "Candidate",
    "CandidateRejected", "ChatLLM", "ChatReply", "ChatRequest", "ConfigError", "Message",
    "ParseResult", "Proposal", "Proposer", "Registry", "RunConfig", "RunStore", "Score", "Scorer",
    "StoreError", "Study", "StudyResult", "TaskInfo", "Trial", "TrialState", "UnknownNameError",
    "build_llm", "build_method", "build_parts", "build_scorer", "build_task", "parse_candidates",
    "parse_template", "resume_run", "start_run",
]
