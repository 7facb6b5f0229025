"""VLM judge against a scripted OpenAI-compatible server on 127.0.0.1: parsing, retries, cache, errors."""

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.config import RewardModels, VLMJudgeConfig
from cgrpo_core.rewards.registry import load_reward
from cgrpo_core.rewards.vlm_judge import VLMJudge, VLMJudgeError, parse_score
from tests.cgrpo_core.rewards.scenes import random_scene

SECRET = "sk-test-secret-0123"


class Server:
    """Answers each POST with the next scripted behaviour: ("answer", text), ("status", code), ("echo",
    code: the request headers as the error body) or ("sleep", seconds, text); records every request."""

    def __init__(self):
        self.script, self.requests = [], []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                kind, *args = server.script.pop(0) if server.script else ("status", 599)
                if kind == "sleep":
                    time.sleep(args[0])
                    kind, args = "answer", args[1:]
                if kind == "echo":  # a proxy that echoes the request's headers in its error body
                    self.send_response(args[0])
                    self.end_headers()
                    self.wfile.write(json.dumps(dict(self.headers)).encode())
                    return
                if kind == "status":
                    self.send_response(args[0])
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted failure"}')
                    return
                payload = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": args[0]}}]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    srv.httpd.shutdown()


@pytest.fixture
def judge_env(server, monkeypatch, tmp_path):
    server.script.clear()
    server.requests.clear()
    monkeypatch.setenv("CGRPO_VLM_BASE_URL", server.url)
    monkeypatch.setenv("CGRPO_VLM_MODEL", "judge-model")
    monkeypatch.setenv("CGRPO_VLM_API_KEY", SECRET)
    return VLMJudgeConfig(
        max_attempts=3, backoff_s=0.01, timeout_s=0.5, cache_dir=str(tmp_path), max_concurrency=1
    )


def _batch(n=1):
    rng = np.random.default_rng(0)
    images = [random_scene(rng)[0] for _ in range(n + 1)]
    return RewardBatch(
        images[:n], references=[images[n]] * n, prompts=["a dog in the snow"] * n, subjects=["dog"] * n
    )


@pytest.mark.parametrize(
    ("text", "score"),
    [('{"score": 7}', 7.0), ('```json\n{"score": 8.5}\n```', 8.5), (" 3 ", 3.0), ('Sure. {"score": 0}', 0.0)],
)
def test_parse_score_accepts_json_or_a_bare_number(text, score):
    assert parse_score(text, 0, 10) == score


@pytest.mark.parametrize("text", ["I would rate it 7/10", "", '{"score": "high"}', '{"score": 11}', "7 or 8"])
def test_parse_score_refuses_anything_else(text):
    with pytest.raises(ValueError):
        parse_score(text, 0, 10)


def test_prompt_judge_sends_the_image_and_prompt_and_parses(server, judge_env):
    server.script += [("answer", '{"score": 6}'), ("answer", '{"score": 9}')]
    judge = VLMJudge("vlm_judge_prompt", "prompt", judge_env)
    scores = judge(RewardBatch(_batch(2).images, prompts=["a dog in the snow", "a cat"]))
    assert scores.tolist() == [6.0, 9.0]
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == f"Bearer {SECRET}"
    body = first["body"]
    assert body["model"] == "judge-model" and body["temperature"] == 0.0
    content = body["messages"][1]["content"]
    assert '"a dog in the snow"' in content[-1]["text"]
    url = content[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (64, 64)


def test_identity_judge_sends_references_then_the_image(server, judge_env):
    server.script += [("answer", "4")]
    score = load_reward("vlm_judge_id", RewardModels(vlm=judge_env))(_batch(1))
    assert score.tolist() == [4.0]
    content = server.requests[0]["body"]["messages"][1]["content"]
    assert [c["type"] for c in content] == ["image_url", "image_url", "text"]
    assert "(a dog)" in content[-1]["text"]


def test_malformed_answer_is_retried(server, judge_env):
    server.script += [("answer", "It looks nice!"), ("answer", '{"score": 5}')]
    assert VLMJudge("j", "prompt", judge_env)(_batch()).tolist() == [5.0]
    assert len(server.requests) == 2


def test_always_malformed_is_an_error_never_a_score(server, judge_env):
    server.script += [("answer", "no idea")] * 3
    with pytest.raises(VLMJudgeError, match="no valid score after 3 attempts.*holds no score"):
        VLMJudge("j", "prompt", judge_env)(_batch())
    assert len(server.requests) == 3


def test_timeout_is_retried(server, judge_env):
    server.script += [("sleep", 1.0, '{"score": 1}'), ("answer", '{"score": 2}')]
    assert VLMJudge("j", "prompt", judge_env)(_batch()).tolist() == [2.0]


def test_server_errors_are_retried_then_reported(server, judge_env):
    server.script += [("status", 503), ("answer", '{"score": 8}')]
    assert VLMJudge("j", "prompt", judge_env)(_batch()).tolist() == [8.0]
    server.script += [("status", 500)] * 3
    judge = VLMJudge(
        "j", "prompt", judge_env.model_copy(update={"cache_dir": judge_env.cache_dir + "/other"})
    )
    with pytest.raises(VLMJudgeError, match="HTTP 500") as err:
        judge(_batch())
    assert SECRET not in str(err.value)


def test_always_timing_out_is_an_error_never_a_score(server, judge_env):
    server.script += [("sleep", 1.0, '{"score": 1}')] * 3
    with pytest.raises(VLMJudgeError, match=r"no valid score after 3 attempts.*Timeout"):
        VLMJudge("j", "prompt", judge_env)(_batch())


def test_an_echoed_api_key_is_redacted_from_errors(server, judge_env):
    server.script += [("echo", 400)]
    with pytest.raises(VLMJudgeError, match="HTTP 400") as err:
        VLMJudge("j", "prompt", judge_env)(_batch())
    assert SECRET not in str(err.value) and "<redacted>" in str(err.value)
    server.script += [("echo", 503)] * 3
    with pytest.raises(VLMJudgeError, match="HTTP 503") as err:
        VLMJudge("j", "prompt", judge_env)(_batch())
    assert SECRET not in str(err.value)


def test_client_error_fails_at_once(server, judge_env):
    server.script += [("status", 401)]
    with pytest.raises(VLMJudgeError, match="HTTP 401"):
        VLMJudge("j", "prompt", judge_env)(_batch())
    assert len(server.requests) == 1


def test_answers_are_cached_on_disk_without_the_key(server, judge_env, tmp_path):
    server.script += [("answer", '{"score": 7}')]
    judge = VLMJudge("j", "prompt", judge_env)
    assert judge(_batch()).tolist() == [7.0]
    assert VLMJudge("j", "prompt", judge_env)(_batch()).tolist() == [7.0]  # a new judge, same cache
    assert len(server.requests) == 1
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 1 and SECRET not in files[0].read_text()
    assert json.loads(files[0].read_text())["score"] == 7.0


def test_missing_endpoint_is_a_clear_error(judge_env, monkeypatch):
    monkeypatch.delenv("CGRPO_VLM_BASE_URL")
    with pytest.raises(VLMJudgeError, match="CGRPO_VLM_BASE_URL"):
        VLMJudge("j", "prompt", judge_env)
