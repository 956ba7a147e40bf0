"""The reward service's container: its entry command, run on the host as the Dockerfile writes it.

No container engine here (the Docker client only), so the image is not built; what can be tested is the
command the image runs (ENTRYPOINT + CMD, with the image's environment): closed without a key, serving with
one. The server is moved to loopback with a trailing ``--host 127.0.0.1 --port P`` (the last value wins).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def _instruction(name: str) -> list[str]:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith(name + " ")]
    assert len(lines) == 1, f"one {name} expected"
    return json.loads(lines[0][len(name) + 1:])


def _image_env(cache: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                k, _, v = pair.partition("=")
                env[k] = v.replace("/cache", str(cache))
    return env


def _command() -> list[str]:
    cmd = _instruction("ENTRYPOINT") + _instruction("CMD")
    assert cmd[:3] == ["verif", "rl", "serve"]
    return [sys.executable, "-c", "from verinstruct.cli import main; main()", *cmd[1:]]


def test_the_image_is_non_root_and_keeps_state_only_in_its_cache_volume() -> None:
    text = DOCKERFILE.read_text()
    user = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert user and not user[-1].startswith(("0", "root"))
    assert 'VOLUME ["/cache"]' in text and "VERIF_REWARD_CACHE=/cache/" in text


def test_entry_command_refuses_to_listen_without_a_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VERIF_REWARD_API_KEY"} | _image_env(tmp_path)
    res = subprocess.run(_command(), env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert "0.0.0.0" in line and "VERIF_REWARD_API_KEY" in line


def test_entry_command_serves_with_a_key(tmp_path: Path, unused_port: int) -> None:
    env = dict(os.environ) | _image_env(tmp_path) | {"VERIF_REWARD_API_KEY": "k3y"}
    cmd = _command() + ["--host", "127.0.0.1", "--port", str(unused_port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    url = f"http://127.0.0.1:{unused_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the entry command did not start serving"
            time.sleep(0.2)
        gt = {"id": "a", "prompt": "Say hi", "constraints": [
            {"name": "lowercase", "kind": "hard", "text": "all lowercase",
             "check": {"type": "registry", "checker": "change_case:english_lowercase", "kwargs": {}}}]}
        body = {"items": [{"ground_truth": gt, "response": "hi there"}, {"ground_truth": gt, "response": "Hi"}]}
        assert httpx.post(f"{url}/v1/reward", json=body).status_code == 401
        r = httpx.post(f"{url}/v1/reward", json=body, headers={"Authorization": "Bearer k3y"})
        assert r.status_code == 200, r.text
        assert [x["score"] for x in r.json()["results"]] == [1.0, 0.0]
    finally:
        proc.terminate()
        proc.wait(30)
