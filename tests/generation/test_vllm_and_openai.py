"""vLLM in-process and an OpenAI-compatible server (vLLM's own, started on loopback), on the embedded model.

Marked `vllm`: they need vllm (vllm-cpu here), which `make test` installs. Each engine takes a minute or more to
start on this CPU, so one engine per module serves all its tests.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lab.generation import SamplingParams
from tests.models.helpers import make_lora
from tests.servers import free_port, wait_for_url

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
GREEDY = SamplingParams(max_new_tokens=16, temperature=0.0)
JOKE = [{"role": "user", "content": "Tell me a joke."}]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, embedded_path) -> str:
    return str(make_lora(embedded_path, tmp_path_factory.mktemp("lora") / "joke", scale=0.3))


@pytest.fixture(scope="module")
def vllm_backend(embedded_path):
    pytest.importorskip("vllm")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from lab.generation.vllm_backend import VLLMBackend

    backend = VLLMBackend("embedded", max_model_len=2048, max_lora_rank=16)
    yield backend
    backend.close()


def test_vllm_streams_and_batches_the_same_text(vllm_backend):
    streamed = "".join(vllm_backend.stream_chat(JOKE, GREEDY))
    [batched] = vllm_backend.generate([vllm_backend.chat_prompt(JOKE)], GREEDY)
    assert streamed and streamed == batched.text
    many = vllm_backend.generate(["The capital of France is"] * 3 + ["1, 2, 3,"], GREEDY)
    assert len({c.text for c in many[:3]}) == 1 and all(c.completion_tokens > 0 for c in many)


def test_vllm_stop_strings(vllm_backend):
    [c] = vllm_backend.generate(["List three fruits:\n1."], SamplingParams(max_new_tokens=30, temperature=0, stop=["\n"]))
    assert "\n" not in c.text and c.finish_reason == "stop"


def test_vllm_scoring_with_lora_on_cpu_is_refused_clearly(vllm_backend):
    with pytest.raises(RuntimeError, match="transformers backend"):
        vllm_backend.loglikelihood([("The capital of France is", " Paris")])


def test_vllm_lora_requests_change_the_answer(vllm_backend, adapter):
    base = "".join(vllm_backend.stream_chat(JOKE, GREEDY))
    adapted = "".join(vllm_backend.stream_chat(JOKE, GREEDY, adapter=adapter))
    assert adapted != base
    assert "".join(vllm_backend.stream_chat(JOKE, GREEDY)) == base


@pytest.fixture(scope="module")
def openai_server(embedded_path, tmp_path_factory):
    """`vllm serve` on loopback. Without LoRA: vLLM-cpu cannot score prompts with LoRA enabled (see vllm_backend)."""
    yield from _serve(embedded_path, tmp_path_factory)


def _serve(embedded_path, tmp_path_factory):
    pytest.importorskip("vllm")
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", embedded_path,
        "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048",
        "--dtype", "float32",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_url(f"{url}/models", proc, log, timeout=900)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_openai_backend_against_a_real_server(openai_server, tmp_path):
    from lab.generation.openai_http import OpenAIBackend, ServerError

    backend = OpenAIBackend(openai_server)
    assert backend.model == "smollm2"
    deltas = list(backend.stream_chat(JOKE, GREEDY))
    assert len(deltas) > 2
    completions = backend.generate(["The capital of France is", "1, 2, 3,"], SamplingParams(max_new_tokens=8, temperature=0))
    assert all(c.text and c.completion_tokens > 0 for c in completions)
    assert completions[0].text == backend.generate(["The capital of France is"], SamplingParams(max_new_tokens=8, temperature=0))[0].text
    paris, london = backend.loglikelihood([("The capital of France is", " Paris"), ("The capital of France is", " London")])
    assert paris > london
    assert paris == pytest.approx(-0.258, abs=0.05)  # the transformers backend's value for the same request
    folder = tmp_path / "runs" / "my-run" / "adapter"
    folder.mkdir(parents=True)
    assert backend._model_for(str(folder)) == "my-run"  # a trained run's adapter is served under the run's name
    with pytest.raises(ServerError, match="answered 404"):
        list(backend.stream_chat(JOKE, GREEDY, adapter="no-such-adapter"))
