"""The openai backend through the official SDK against a real HTTP server on 127.0.0.1 that
injects faults: every fault ends in a retry or a clear error, and runs stay consistent."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from promptclimb.cli import main
from promptclimb.llm.base import ChatRequest, LLMConfigError, LLMReplyError, Message, RetryableLLMError
from promptclimb.llm.openai_compat import OpenAICompatLLM
from promptclimb.llm.pricing import estimate_cost
from promptclimb.llm.retry import RetryPolicy
from promptclimb.store import STORE_FILE, RunStore
from promptclimb.testing.chat_server import ChatServer

REQ = ChatRequest((Message("system", "be brief"), Message("user", "a template please")), seed=3)


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with ChatServer(["a photo of a {}."], slow_s=2.0) as srv:
        yield srv


def _llm(server: ChatServer, attempts: int = 4, **kw: object) -> tuple[OpenAICompatLLM, RetryPolicy]:
    policy = RetryPolicy(max_attempts=attempts, sleep=lambda s: None, rand=lambda: 0.5)
    return OpenAICompatLLM("test-model", base_url=server.url, api_key_env="", timeout=0.5, retry=policy,
                           **kw), policy  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", ["429", "429_bare", "500", "502", "503", "slow", "reset", "cut", "cut_utf8",
                                   "invalid_json", "html", "null_content", "empty_choices"])
def test_transient_faults_are_retried_then_succeed(server: ChatServer, fault: str) -> None:
    llm, policy = _llm(server)
    server.faults.append(fault)
    reply = llm.chat(REQ)
    assert reply.text == "a photo of a {}." and reply.prompt_tokens > 0
    assert len(policy.delays) == 1 and len(server.requests) == 2
    assert server.requests[0]["seed"] == 3 and server.requests[0]["messages"][1]["content"] == "a template please"


def test_retry_after_is_honoured_and_backoff_grows(server: ChatServer) -> None:
    server.retry_after = 7.0
    llm, policy = _llm(server, attempts=5)
    server.faults.extend(["429", "500", "500"])
    llm.chat(REQ)
    assert policy.delays == [7.0, 0.5 * 0.5 * 2, 0.5 * 0.5 * 4]  # Retry-After, then base * 2^n * jitter


def test_an_empty_text_is_the_models_answer_not_retried(server: ChatServer) -> None:
    llm, _ = _llm(server)
    server.faults.append("empty_content")
    with pytest.raises(LLMReplyError, match="empty text"):
        llm.chat(REQ)
    assert len(server.requests) == 1


@pytest.mark.parametrize(("fault", "named"), [("html", "an HTML body, not the API's JSON"),
                                              ("null_content", "content null"),
                                              ("empty_choices", "no choices")])
def test_bodies_that_are_not_replies_are_named_with_status_and_url(server: ChatServer, fault: str,
                                                                   named: str) -> None:
    llm, _ = _llm(server, attempts=2)
    server.always = fault
    with pytest.raises(RetryableLLMError) as err:
        llm.chat(REQ)
    assert named in str(err.value) and "status 200" in str(err.value) and server.url in str(err.value)
    assert len(server.requests) == 2


def test_a_huge_reply_still_yields_its_template(server: ChatServer) -> None:
    llm, _ = _llm(server)
    server.faults.append("huge")
    reply = llm.chat(REQ)
    assert reply.text.splitlines()[0] == "a photo of a {}." and len(reply.text) > 1_000_000


def test_persistent_faults_give_up_with_a_retryable_error(server: ChatServer) -> None:
    llm, policy = _llm(server, attempts=3)
    server.faults.extend(["503"] * 3)
    with pytest.raises(RetryableLLMError, match="gave up after 3 attempts"):
        llm.chat(REQ)
    assert len(server.requests) == 3 and len(policy.delays) == 2


def test_concurrency_limit_is_honoured(server: ChatServer) -> None:
    server.latency_s = 0.1
    llm, _ = _llm(server, max_concurrency=2)
    threads = [threading.Thread(target=llm.chat, args=(REQ,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.requests) == 8 and server.max_in_flight == 2


def test_start_up_checks(server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PC_TEST_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="PC_TEST_KEY is not set"):
        OpenAICompatLLM("test-model", base_url=server.url, api_key_env="PC_TEST_KEY").check()
    with pytest.raises(LLMConfigError, match="does not serve model 'gpt-9'; it serves: test-model"):
        OpenAICompatLLM("gpt-9", base_url=server.url, api_key_env="").check()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(LLMConfigError, match=f"cannot reach http://127.0.0.1:{closed}/v1"):
        OpenAICompatLLM("test-model", base_url=f"http://127.0.0.1:{closed}/v1", api_key_env="", timeout=2).check()


def test_pricing() -> None:
    assert estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert estimate_cost("gpt-4o-mini-2024-07-18", 2_000_000, 0) == pytest.approx(0.30)
    assert estimate_cost("smollm2", 10, 10) is None


def _cli_args(server: ChatServer, out: Path, *extra: str) -> list[str]:
    return ["optimize", "--task", "demo", "--scorer", "fake", "--llm", "openai:test-model", "--seed", "1",
            "--set", f'llm_options.base_url="{server.url}"', "--set", "llm_options.api_key_env=\"PC_SECRET\"",
            "--set", "llm_options.timeout=0.5", "--set", "method_options.restarts=1",
            "--set", "method_options.resets=2", "--set", "method_options.iterations=3", "--out", str(out), *extra]


def test_a_run_through_faults_stays_consistent_and_never_stores_the_key(
        server: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    secret = "sk-test-SECRET-4242"
    monkeypatch.setenv("PC_SECRET", secret)
    monkeypatch.setattr("promptclimb.llm.retry.time.sleep", lambda s: None)
    server.replies = [f"a {word} rendition of the {{}}." for word in
                      ["bright", "dark", "small", "large", "blurry", "sharp",
                       "vintage", "modern", "clean", "dirty", "quiet", "noisy"]]
    server.faults.extend(["429", "500", "cut", "invalid_json", "empty_content", "503"])
    assert main(_cli_args(server, tmp_path / "run")) == 0
    assert all({k.lower(): v for k, v in h.items()}["authorization"] == f"Bearer {secret}" for h in server.headers)
    for path in (tmp_path / "run").iterdir():
        assert secret.encode() not in path.read_bytes(), path
    capsys.readouterr()
    assert main(["show", str(tmp_path / "run"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    store = RunStore.open(tmp_path / "run")
    exchanges = store.exchanges()
    assert all((e.reply is None) != (e.error is None) for e in exchanges)  # a reply or an error, never both
    assert summary["llm_calls"] == len(exchanges) and summary["n_trials"] == 26
    assert [e.error for e in exchanges if e.error] == ["openai:test-model returned empty text: the model wrote nothing"]
    assert summary["llm_cost_usd"] > 0  # test-model is priced in the shipped table
    assert (tmp_path / "run" / STORE_FILE).exists()


def test_a_cost_budget_stops_the_run(server: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PC_SECRET", "x")
    assert main(_cli_args(server, tmp_path / "run", "--max-cost", "0.05")) == 0
    capsys.readouterr()
    main(["show", str(tmp_path / "run"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["stopped_by"] == "cost_usd=0.05" and summary["llm_cost_usd"] >= 0.05


@pytest.mark.parametrize(("env", "extra", "message"), [
    ({}, [], "PC_SECRET is not set"),
    ({"PC_SECRET": "x"}, ["--llm", "openai:gpt-9"], "does not serve model 'gpt-9'"),
])
def test_bad_llm_setup_is_one_line_before_any_work(server: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], env: dict, extra: list,
                                                   message: str) -> None:
    monkeypatch.delenv("PC_SECRET", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main([*_cli_args(server, tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists() and server.requests == []
