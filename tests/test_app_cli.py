"""The app's command line: flags, auth parsing, and a --share that cannot reach the tunnel keeps serving locally."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import app

ROOT = Path(__file__).resolve().parents[1]


def test_auth_must_be_user_colon_password():
    assert app.parse_auth("me:secret") == ("me", "secret")
    assert app.parse_auth(None) is None
    for bad in ("nopassword", ":secret", "me:"):
        with pytest.raises(SystemExit, match="user:password"):
            app.parse_auth(bad)


def test_flags_reach_the_context():
    args = app.parse_args(["--model", "Qwen/Qwen2.5-7B-Instruct", "--quantization", "4bit", "--port", "9000"])
    assert (args.model, args.quantization, args.port, args.backend) == ("Qwen/Qwen2.5-7B-Instruct", "4bit", 9000, "transformers")


@pytest.mark.slow
def test_share_without_internet_says_so_and_serves_locally(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LAB_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--share"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while "still serving locally" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.time() < deadline, log.read_text()[-2000:]
            time.sleep(1)
        text = log.read_text()
        assert "anyone with the link" in text  # --share without --auth warns
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
