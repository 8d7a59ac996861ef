"""Adaptation Lab: the Gradio app. Composes one tab per capability; `python app.py --help` lists the flags.

The module-level `demo` is built on import (so `gradio app.py` reload mode and tests can use it); `__main__` parses
flags, configures the shared LabContext and launches. The `if __name__ == "__main__"` guard also matters for vLLM,
whose in-process engine spawns worker processes that re-import the main module.
"""

from __future__ import annotations

import argparse
import os
import sys

import gradio as gr

from lab.context import LabContext
from tabs import TABS

CONTEXT = LabContext()


def build_demo(ctx: LabContext) -> gr.Blocks:
    """One tab per capability, each laid out and wired by its module's build(ctx)."""
    with gr.Blocks(title="Adaptation Lab") as demo:
        gr.Markdown(f"# Adaptation Lab\nBase model: `{ctx.model}` · backend: `{ctx.backend_kind}`")
        for title, module in TABS:
            with gr.Tab(title, id=title.lower()):
                module.build(ctx)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Adaptation Lab: chat, evaluate, train and play with RL in the browser.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for the local network)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    p.add_argument("--model", default=CONTEXT.model, help="'embedded' (SmolLM2-135M-Instruct), a hub id or a folder")
    p.add_argument("--backend", default="transformers", choices=["transformers", "vllm", "openai"])
    p.add_argument("--quantization", default="none", choices=["none", "4bit", "8bit"], help="bitsandbytes loading")
    p.add_argument("--openai-base-url", default=None, help="with --backend openai: e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="with --backend vllm: GPUs to split the model over")
    p.add_argument("--lab-home", default=None, help="folder for everything the lab writes (default: $LAB_HOME)")
    p.add_argument("--share", action="store_true", help="also open a temporary public link (needs internet)")
    p.add_argument("--auth", default=None, help="user:password required to open the app")
    return p.parse_args(argv)


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """'user:password' -> (user, password); an error that says what to type otherwise."""
    if auth is None:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise SystemExit("--auth must look like user:password (both non-empty)")
    return user, password


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.lab_home:
        os.environ["LAB_HOME"] = args.lab_home
    ctx = LabContext(
        model=args.model,
        backend_kind=args.backend,
        quantization=args.quantization,
        openai_base_url=args.openai_base_url,
        tensor_parallel_size=args.tensor_parallel_size,
    )
    demo = build_demo(ctx)
    auth = parse_auth(args.auth)
    if args.share and auth is None:
        print("WARNING: --share without --auth: anyone with the link can use this app and your GPU.", file=sys.stderr)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name=args.host, server_port=args.port, auth=auth, share=args.share, show_error=True,
        prevent_thread_lock=True,
    )
    if args.share and not demo.share_url:  # gradio logs the cause and keeps serving locally
        print(
            f"Could not create the public share link (it needs internet to reach the tunnel service). "
            f"The app is still serving locally at {demo.local_url}",
            file=sys.stderr,
        )
    demo.block_thread()


demo = build_demo(CONTEXT)

if __name__ == "__main__":
    main()
