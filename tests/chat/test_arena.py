"""Arena rounds on the real embedded model: batched and threaded pairs, per-row sampling, failures, context trimming."""

from __future__ import annotations

import pytest
import torch

from lab.chat.arena import PaneConfig, can_batch, fit_to_context, prepare_pane, stream_pane, stream_round
from lab.generation.base import SamplingParams, shares_batch
from lab.generation.hf import RowSampling

pytestmark = pytest.mark.slow  # generation on the shared 2-core machine: minutes under load

Q = [{"role": "user", "content": "What is the capital of France?"}]
Q2 = [{"role": "user", "content": "Name three fruits."}]


def greedy(n=12, **kw):
    return SamplingParams(max_new_tokens=n, temperature=0.0, **kw)


def run(items):
    text, last = {"a": "", "b": ""}, None
    for item in items:
        text["a"] += item.delta_a
        text["b"] += item.delta_b
        last = item
    return text, last


def test_row_sampling_scales_each_row_and_keeps_argmax_for_greedy_rows():
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0], [2.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 0.0]])
    out = RowSampling([0.5, 2.0, 0.0], top_p=1.0)(None, scores.clone())
    assert torch.allclose(out[0], scores[0] / 0.5) and torch.allclose(out[1], scores[1] / 2.0)
    assert out[2, 1] == 0 and torch.isinf(out[2, [0, 2, 3]]).all()  # greedy row: only its arg-max survives
    cut = RowSampling([1.0, 1.0, 1.0], top_p=0.5)(None, scores.clone())
    assert torch.isinf(cut[0, 1:]).all() and torch.isfinite(cut[0, 0])  # top-p 0.5 keeps the top token only


def test_batching_rule():
    a, b = greedy(), SamplingParams(max_new_tokens=12, temperature=1.3)
    assert shares_batch(a, b) and not shares_batch(a, greedy(13)) and not shares_batch(a, greedy(stop=["x"]))
    assert shares_batch(greedy(seed=3), SamplingParams(max_new_tokens=12, temperature=1.0, seed=0))  # greedy: no seed
    assert not shares_batch(SamplingParams(max_new_tokens=12, seed=1), SamplingParams(max_new_tokens=12, seed=2))
    assert not shares_batch(SamplingParams(max_new_tokens=12, top_p=0.9), SamplingParams(max_new_tokens=12))


def test_batched_pair_base_vs_adapter(backend, lora):
    cfg_a, cfg_b = PaneConfig("embedded", None, greedy()), PaneConfig("embedded", lora, greedy())
    prepare_pane(backend, lora)
    assert can_batch(backend, backend, cfg_a, cfg_b)
    text, last = run(stream_round(backend, backend, Q, Q, cfg_a, cfg_b))
    assert last.done_a and last.done_b and last.error_a is None and last.error_b is None
    alone_a = "".join(stream_pane(backend, Q, cfg_a))
    alone_b = "".join(stream_pane(backend, Q, cfg_b))
    assert text["a"] == alone_a and text["b"] == alone_b  # same prompt length: batching changes nothing
    assert alone_a != alone_b  # the adapter really answers differently


def test_threaded_panes_on_one_model_do_not_mix_adapters(backend, lora):
    """Sampling that cannot share a batch runs threaded; the per-model lock keeps peft's adapter hooks apart."""
    cfg_a, cfg_b = PaneConfig("embedded", None, greedy(10)), PaneConfig("embedded", lora, greedy(11))
    prepare_pane(backend, lora)
    assert not can_batch(backend, backend, cfg_a, cfg_b)
    expected_a = "".join(stream_pane(backend, Q, cfg_a))
    expected_b = "".join(stream_pane(backend, Q2, cfg_b))
    for _ in range(2):
        text, last = run(stream_round(backend, backend, Q, Q2, cfg_a, cfg_b))
        assert last.error_a is None and last.error_b is None
        assert text == {"a": expected_a, "b": expected_b}


def test_mixed_temperatures_in_one_batch(backend, lora):
    cfg_a = PaneConfig("embedded", None, greedy(10, seed=1))
    cfg_b = PaneConfig("embedded", lora, SamplingParams(max_new_tokens=10, temperature=1.5, seed=1))
    assert can_batch(backend, backend, cfg_a, cfg_b)
    text, last = run(stream_round(backend, backend, Q, Q, cfg_a, cfg_b))
    assert last.error_a is None and text["a"] == "".join(stream_pane(backend, Q, PaneConfig("embedded", None, greedy(10))))
    assert text["b"]


def test_bad_adapter_fails_only_its_pane(backend, tmp_path):
    broken = tmp_path / "broken_adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text('{"base_model_name_or_path": "embedded"}')  # no weights
    cfg_a, cfg_b = PaneConfig("embedded", None, greedy(8)), PaneConfig("embedded", str(broken), greedy(8))
    text, last = run(stream_round(backend, backend, Q, Q, cfg_a, cfg_b))
    assert last.error_a is None and text["a"]
    assert "no adapter weights" in last.error_b and text["b"] == ""


class FailsMidAnswer:
    """The real backend, but the stream breaks after a few deltas (as a crashing model server would)."""

    def __init__(self, backend, after: int):
        self.backend, self.after = backend, after

    def stream_chat(self, messages, params, adapter=None):
        for i, delta in enumerate(self.backend.stream_chat(messages, params, adapter=adapter)):
            if i == self.after:
                raise RuntimeError("model crashed mid answer")
            yield delta


def test_model_failing_mid_answer_leaves_the_other_pane_whole(backend):
    cfg = PaneConfig("embedded", None, greedy(16))
    text, last = run(stream_round(FailsMidAnswer(backend, 3), backend, Q, Q, cfg, cfg))
    assert last.error_a == "RuntimeError: model crashed mid answer" and text["a"]
    assert last.error_b is None and text["b"] == "".join(stream_pane(backend, Q, cfg))


def test_fit_to_context_trims_the_oldest_turns_of_a_real_conversation(backend):
    long_turn = "The quick brown fox jumps over the lazy dog. " * 100  # about 1000 tokens
    messages = [{"role": "system", "content": "Be brief."}]
    for i in range(6):
        messages += [{"role": "user", "content": f"{i} {long_turn}"}, {"role": "assistant", "content": "ok"}]
    messages.append({"role": "user", "content": "Summarise."})
    context = backend.context_length()
    trimmed = fit_to_context(backend, messages, max_new_tokens=context - 2500)
    assert 0 < trimmed.dropped_turns < len(messages) - 2
    assert trimmed.messages[0]["role"] == "system" and trimmed.messages[-1]["content"] == "Summarise."
    assert trimmed.prompt_tokens <= 2500 and "oldest turn" in trimmed.note
    with pytest.raises(ValueError, match="too long"):
        fit_to_context(backend, [{"role": "user", "content": long_turn * 3}], max_new_tokens=context - 100)


def test_cpu_arena_gives_pane_b_its_own_copy_of_a_small_model(lora):
    """On the CPU a second copy lets the panes stream in parallel (bench/results/chat_streaming.md); it answers like
    the first and carries its own adapter."""
    from lab.context import LabContext

    ctx = LabContext()
    assert ctx.pane_replica("embedded", "embedded") == 1 and ctx.pane_replica("embedded", "other/model") == 0
    first, second = ctx.backend("embedded"), ctx.backend("embedded", replica=1)
    assert second is not first and second.manager.model() is not first.manager.model()
    cfg_a, cfg_b = PaneConfig("embedded", None, greedy()), PaneConfig("embedded", lora, greedy())
    prepare_pane(second, lora)
    assert not can_batch(first, second, cfg_a, cfg_b)
    text, last = run(stream_round(first, second, Q, Q, cfg_a, cfg_b))
    assert last.error_a is None and last.error_b is None
    assert text["a"] == "".join(stream_pane(first, Q, cfg_a)) and text["b"] == "".join(stream_pane(first, Q, cfg_b))
    with pytest.raises(ValueError, match="replicas"):
        LabContext(backend_kind="vllm").backend("embedded", replica=1)
