"""Generation through an OpenAI-compatible HTTP server (`vllm serve`, llama.cpp's server, ollama, ...).

For users who already run a server: chat streams from `/chat/completions` (server-sent events), raw prompts go to
`/completions`, sent concurrently so the server's own continuous batching groups them, and log-likelihoods use
`/completions` with `echo` and `logprobs` (supported by vLLM's server; others may refuse, which is reported). An
adapter is addressed by the name the server serves it under (`vllm serve BASE --enable-lora --lora-modules
NAME=PATH`); a local adapter folder is mapped to its folder name.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

from lab.generation.base import Completion, SamplingParams


class ServerError(RuntimeError):
    """The server refused or failed a request; the message carries its answer."""


class OpenAIBackend:
    """The Backend protocol over HTTP."""

    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, api_key: str = "EMPTY", timeout: float = 600.0,
                 concurrency: int = 16):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers={"Authorization": f"Bearer {api_key}"}
        )
        self.concurrency = concurrency
        served = self.models()
        self.model = model if model in served else served[0]

    def close(self) -> None:
        self.client.close()

    def models(self) -> list[str]:
        data = self._post_or_get("GET", "/models")
        names = [m["id"] for m in data.get("data", [])]
        if not names:
            raise ServerError(f"{self.base_url}/models lists no model")
        return names

    def _post_or_get(self, method: str, path: str, body: dict | None = None) -> dict:
        import httpx

        try:
            resp = self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach {self.base_url}{path}: {exc}") from exc
        if resp.status_code != 200:
            raise ServerError(f"{self.base_url}{path} answered {resp.status_code}: {resp.text[:500]}")
        return resp.json()

    def _model_for(self, adapter: str | None) -> str:
        if adapter is None:
            return self.model
        path = Path(adapter)
        return (path.parent.name if path.name == "adapter" else path.name) if path.exists() else adapter

    @staticmethod
    def _sampling(params: SamplingParams) -> dict:
        body = dict(max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    def chat_prompt(self, messages: Sequence[dict]) -> str:
        """The server applies its own chat template; locally we can only show the messages."""
        return "\n".join(f"<{m['role']}>\n{m['content']}" for m in messages) + "\n<assistant>\n"

    def stream_chat(
        self, messages: Sequence[dict], params: SamplingParams, adapter: str | None = None
    ) -> Iterator[str]:
        import httpx

        body = dict(model=self._model_for(adapter), messages=list(messages), stream=True, **self._sampling(params))
        try:
            with self.client.stream("POST", "/chat/completions", json=body) as resp:
                if resp.status_code != 200:
                    raise ServerError(f"/chat/completions answered {resp.status_code}: {resp.read()[:500]!r}")
                for line in resp.iter_lines():
                    if not line.startswith("data:") or line.strip() == "data: [DONE]":
                        continue
                    choices = json.loads(line[5:]).get("choices") or [{}]
                    delta = (choices[0].get("delta") or {}).get("content")
                    if delta:
                        yield delta
        except httpx.HTTPError as exc:
            raise ServerError(f"streaming from {self.base_url} failed: {exc}") from exc

    def _complete(self, prompt: str, params: SamplingParams, model: str) -> Completion:
        data = self._post_or_get("POST", "/completions", dict(model=model, prompt=prompt, **self._sampling(params)))
        choice, usage = data["choices"][0], data.get("usage") or {}
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return Completion(choice["text"], usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), finish)

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, adapter: str | None = None
    ) -> list[Completion]:
        model = self._model_for(adapter)
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda p: self._complete(p, params, model), prompts))

    def _score(self, context: str, continuation: str, model: str) -> float:
        body = dict(model=model, prompt=context + continuation, max_tokens=1, echo=True, logprobs=0, temperature=0.0)
        logprobs = self._post_or_get("POST", "/completions", body)["choices"][0].get("logprobs")
        if not logprobs or "token_logprobs" not in logprobs:
            raise ServerError(f"{self.base_url} does not return prompt logprobs (echo=True); use another backend")
        offsets, values = logprobs["text_offset"], logprobs["token_logprobs"]
        n_prompt = len(offsets) - 1  # the last entry is the one generated token
        return float(sum(v for o, v in zip(offsets[:n_prompt], values[:n_prompt]) if o >= len(context) and v is not None))

    def loglikelihood(self, requests: Sequence[tuple[str, str]], adapter: str | None = None) -> list[float]:
        model = self._model_for(adapter)
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda r: self._score(r[0], r[1], model), requests))
