"""TransformersBackend on the real embedded model: streaming, batching, stop strings, scoring, adapters, 4-bit."""

from __future__ import annotations

import pytest

from lab.generation import SamplingParams
from lab.generation.hf import TransformersBackend
from lab.models.loading import LoadConfig, ModelManager, load_model
from tests.models.helpers import make_lora

GREEDY = SamplingParams(max_new_tokens=24, temperature=0.0)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def backend(embedded_path):
    return TransformersBackend(ModelManager(LoadConfig(model="embedded")), batch_size=4)


def test_streaming_yields_several_deltas_that_add_up_to_the_batched_answer(backend):
    deltas = list(backend.stream_chat(QUESTION, GREEDY))
    assert len(deltas) > 3
    streamed = "".join(deltas)
    assert "Paris" in streamed
    [batched] = backend.generate([backend.chat_prompt(QUESTION)], GREEDY)
    assert streamed == batched.text


def test_results_do_not_depend_on_batch_size(backend):
    prompts = [
        "Question: What is 2 + 3?\nAnswer:",
        "The three primary colours are",
        "Question: Name a large animal that lives in the sea, and say where it lives.\nAnswer:",
        "Hi",
        "def fibonacci(n):",
    ]
    params = SamplingParams(max_new_tokens=12, temperature=0.0)
    one = TransformersBackend(backend.manager, batch_size=1).generate(prompts, params)
    many = backend.generate(prompts, params)
    assert [c.text for c in one] == [c.text for c in many]
    assert [c.prompt_tokens for c in one] == [c.prompt_tokens for c in many]


def test_stop_strings_end_each_row_and_are_removed(backend):
    params = SamplingParams(max_new_tokens=40, temperature=0.0, stop=["\n"])
    out = backend.generate(["Question: What is 2 + 2?\nAnswer:", "List three fruits:\n1."], params)
    for completion in out:
        assert "\n" not in completion.text
        assert completion.finish_reason == "stop"
    streamed = "".join(backend.stream_chat([{"role": "user", "content": "Write two short lines."}], params))
    assert "\n" not in streamed


def test_length_limit_is_reported(backend):
    [c] = backend.generate(["Once upon a time"], SamplingParams(max_new_tokens=5, temperature=0.0))
    assert c.completion_tokens == 5 and c.finish_reason == "length"


def test_seeded_sampling_is_reproducible(backend):
    params = SamplingParams(max_new_tokens=16, temperature=1.0, seed=7)
    assert backend.generate(["Once upon a time"], params)[0].text == backend.generate(["Once upon a time"], params)[0].text


def test_loglikelihood_prefers_the_right_answer_and_is_batch_invariant(backend):
    requests = [("The capital of France is", " Paris"), ("The capital of France is", " London"), ("1, 2, 3,", " 4")]
    scores = backend.loglikelihood(requests)
    assert scores[0] > scores[1]
    single = TransformersBackend(backend.manager, batch_size=1).loglikelihood(requests)
    assert scores == pytest.approx(single, abs=1e-3)


def test_loglikelihood_matches_a_plain_forward_pass(backend):
    import torch

    model, tok = backend.manager.model(), backend.tokenizer
    ctx, cont = tok("The sky is", add_special_tokens=False)["input_ids"], tok(" blue", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ctx + cont])).logits[0].float()
    expected = sum(torch.log_softmax(logits[len(ctx) - 1 + k], -1)[t].item() for k, t in enumerate(cont))
    assert backend.loglikelihood([("The sky is", " blue")])[0] == pytest.approx(expected, abs=1e-3)


def test_adapter_changes_answers_and_base_is_restored(backend, tmp_path, embedded_path):
    adapter = str(make_lora(embedded_path, tmp_path / "lora", scale=0.3))
    joke = [{"role": "user", "content": "Tell me a joke."}]
    base = "".join(backend.stream_chat(joke, GREEDY))
    adapted = "".join(backend.stream_chat(joke, GREEDY, adapter=adapter))
    assert adapted != base
    assert "".join(backend.stream_chat(joke, GREEDY)) == base  # adapter disabled per request
    both = ["", ""]
    for deltas in backend.stream_many([joke, joke], GREEDY, [None, adapter]):
        both = [acc + d for acc, d in zip(both, deltas)]
    assert both == [base, adapted]  # one mixed batch serves base and adapter rows
    prompt = backend.chat_prompt(joke)
    assert backend.generate([prompt], GREEDY, adapter=adapter)[0].text == adapted


def test_load_config_is_validated():
    with pytest.raises(ValueError, match="quantization"):
        LoadConfig(quantization="3bit")
    with pytest.raises(ValueError, match="dtype"):
        LoadConfig(dtype="int4")
    with pytest.raises(ValueError, match="max_new_tokens"):
        SamplingParams(max_new_tokens=0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)


def test_bfloat16_and_4bit_loading_answer(embedded_path):
    import torch

    model, tok = load_model(LoadConfig(model="embedded", dtype="bfloat16"))
    assert model.dtype == torch.bfloat16
    del model
    manager = ModelManager(LoadConfig(model="embedded", quantization="4bit"))
    quantized = manager.model()
    assert any("4bit" in type(m).__name__ for m in quantized.modules())
    answer = "".join(TransformersBackend(manager).stream_chat(QUESTION, GREEDY))
    assert answer.strip()


def test_answer_letters_share_one_forward_pass_and_match_separate_scoring(backend):
    context = "Question: Which planet is known as the red planet?\nA. Venus\nB. Mars\nC. Jupiter\nD. Saturn\nAnswer:"
    letters = [(context, f" {x}") for x in "ABCD"]
    together = backend.loglikelihood(letters + [("The sky is", " blue today")])
    alone = [backend.loglikelihood([r])[0] for r in letters]
    assert together[:4] == pytest.approx(alone, abs=1e-4)
    assert together[4] == pytest.approx(backend.loglikelihood([("The sky is", " blue today")])[0], abs=1e-4)
