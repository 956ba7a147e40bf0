"""Naming the model to evaluate the ways lm-eval and vLLM users do, and every mistake in it: one line that
names the option, exit 2, and no half-made --out.

Hub ids are tested without the Hub: a tiny random Llama is downloaded from a loopback fake of the Hub's file
endpoint (``HF_ENDPOINT``), and found in a Hugging Face cache layout (``models--org--name/snapshots/<commit>``
+ ``refs/<revision>``) with ``HF_HUB_OFFLINE=1``. vLLM is the fake ``vllm`` module of ``test_vllm_backend.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from verinstruct.cli import _register, app

_register()

TEMPLATE = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}<assistant>"


def tiny_model(path: Path) -> Path:
    """A 1-layer random Llama with a whitespace word-level tokenizer (seeded: the same files every time)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["[UNK]", "[PAD]", "</s>", "<user>", "<assistant>", "<system>", "a", "b", "write", "the", "story"]
    t = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>")
    tok.chat_template = TEMPLATE
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                      eos_token_id=2, pad_token_id=1, bos_token_id=None)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def hub_cache(home: Path, repo: str, revision: str) -> None:
    """``repo`` at ``revision`` in the layout huggingface_hub downloads into (``$HF_HOME/hub``)."""
    root = home / "hub" / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    tiny_model(root / "snapshots" / commit)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / revision).write_text(commit)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=600, env=env)


def _one_error(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_a_hub_id_at_a_revision_loads_through_the_hub_cache_and_is_recorded(tmp_path: Path) -> None:
    home = tmp_path / "hf"
    hub_cache(home, "org/tiny", "v1")  # only the tag v1 exists: without --revision the id does not resolve
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "VERINSTRUCT_PROGRESS": "0"}
    out = tmp_path / "run"
    args = ["eval", "--model", "transformers:org/tiny", "-b", "ifeval", "--limit", "2", "--max-tokens", "3",
            "--no-llm", "--device", "cpu", "--dtype", "float32", "--out", str(out)]
    res = _cli(*args, env=env)
    assert res.returncode == 2, res.stderr
    line = _one_error(res.stderr)
    assert "--model transformers:org/tiny" in line and "HF_HUB_OFFLINE" in line
    assert not out.exists()  # a failed start leaves nothing behind
    res = _cli(*args, "--revision", "v1", env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["generation"]["revision"] == "v1" and run["generation"]["dtype"] == "float32"
    recs = [json.loads(x) for x in (out / "samples" / "ifeval.jsonl").read_text().splitlines()]
    assert len(recs) == 2 and all(r["turns"][0]["completion_tokens"] >= 1 for r in recs)
    res = _cli(*args, "--revision", "v2", env=env)  # another revision: other weights, a different run
    assert res.returncode == 2 and "different settings (generation)" in _one_error(res.stderr)


def test_a_base_model_without_a_chat_template_gets_plain_text(tmp_path: Path) -> None:
    from verifier.backends.transformers_backend import TransformersBackend

    path = tiny_model(tmp_path / "m")
    msgs = [{"role": "system", "content": "a"}, {"role": "user", "content": "write the story"}]
    chat = TransformersBackend(str(path), device="cpu")
    base = TransformersBackend(str(path), device="cpu", no_chat_template=True)
    # oracles written out by hand: the template's text, and the messages joined by blank lines
    assert chat.encode(msgs) == chat.tok("<system> a\n<user> write the story\n<assistant>",
                                         add_special_tokens=False).input_ids
    assert base.encode(msgs) == base.tok("a\n\nwrite the story\n", add_special_tokens=False).input_ids
    assert base.encode(msgs) != chat.encode(msgs)
    with pytest.raises(ValueError, match="exclude"):
        TransformersBackend(str(path), device="cpu", no_chat_template=True, chat_template=TEMPLATE)


@pytest.mark.parametrize(("args", "named"), [
    (["--model", "nosuchbackend:foo"], "unknown backend 'nosuchbackend'"),
    (["--model", "openai:x"], "needs --base-url"),
    (["--model", "openai:"], "no model after openai:"),
    (["--model", "transformers:x", "--base-url", "http://127.0.0.1:9/v1"], "--base-url is for openai"),
    (["--model", "openai:x", "--base-url", "http://127.0.0.1:9/v1", "--revision", "main"], "--revision"),
    (["--model", "openai:x", "--base-url", "http://127.0.0.1:9/v1", "--no-chat-template"], "--no-chat-template"),
    (["--model", "transformers:x", "--tensor-parallel-size", "2"], "--tensor-parallel-size"),
    (["--model", "transformers:x", "--gpu-memory-utilization", "0.5"], "--gpu-memory-utilization"),
    (["--model", "transformers:x", "--api-key", "k"], "--api-key"),
    (["--model", "transformers:x", "--engine-arg", "enforce_eager=true"], "--engine-arg"),
    (["--model", "vllm:x", "--device", "cuda"], "--device"),
    (["--model", "vllm:x", "--batch-size", "4"], "--batch-size"),
    (["--dtype", "fp8"], "--dtype must be one of auto, bfloat16, float16, float32"),
    (["--device", "gpu0"], "--device must be"),
    (["--model", "vllm:x", "--engine-arg", "enforce_eager"], "--engine-arg 'enforce_eager': expected KEY=VALUE"),
    (["--model", "vllm:x", "--engine-arg", "tensor_parallel_size=2"], "--engine-arg tensor_parallel_size: use its own"),
    (["--chat-template", "t.jinja", "--no-chat-template"], "exclude each other"),
    (["--limit", "0"], "--limit must be an integer >= 1, got 0"),
    (["--top-p", "0"], "--top-p must be in (0, 1], got 0.0"),
    (["--model", "vllm:x", "--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization must be in (0, 1]"),
    (["--responses", "r.jsonl", "--dtype", "float16"], "--dtype does not apply with --responses"),
    (["--overwrite", "--force-resume"], "exclude each other"),
    (["--revision", "v1"], "--revision does not apply to --model transformers:default"),
    (["--chat-template", "missing.jinja"], "--chat-template 'missing.jinja': cannot read it (No such file"),
])
def test_every_model_naming_mistake_is_one_line_naming_the_option(tmp_path: Path, args: list[str],
                                                                   named: str) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["eval", "--no-llm", "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert named in _one_error(res.output)
    assert not out.exists()


@pytest.mark.parametrize(("args", "named"), [
    (["--verifier", "nosuch:x"], "--verifier: bad verifier spec 'nosuch:x'"),
    (["--verifier", "openai:judge"], "--verifier openai:judge needs --verifier-base-url"),
    (["--verifier-base-url", "http://127.0.0.1:9/v1"], "--verifier-base-url is for an openai:<model> judge"),
])
def test_a_judge_naming_mistake_is_one_line_before_anything_runs(tmp_path: Path, args: list[str],
                                                                  named: str) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["eval", "--responses", "r.jsonl", "--out", str(out), *args])
    assert res.exit_code == 2 and named in _one_error(res.output) and not out.exists()


def test_out_naming_a_file_names_the_option(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    res = CliRunner().invoke(app, ["eval", "--responses", str(f), "--out", str(f)])
    assert res.exit_code == 2 and "--out" in _one_error(res.output) and "Errno" not in res.output


def test_vllm_without_vllm_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # what `import vllm` sees where it is not installed
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["eval", "--model", "vllm:org/big", "--limit", "1", "--no-llm", "--out", str(out)])
    assert res.exit_code == 2
    line = _one_error(res.output)
    assert line.startswith("error: --model vllm:org/big:") and "pip install vllm" in line
    assert not out.exists()


@dataclasses.dataclass
class EngineArgs:
    """The fields of vllm.EngineArgs this test uses (the real dataclass has about 150)."""

    model: str = ""
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    dtype: str = "auto"
    revision: str | None = None
    trust_remote_code: bool = False
    enforce_eager: bool = False
    enable_prefix_caching: bool | None = None


def _vllm_fakes() -> Any:
    """The fake vLLM classes of test_vllm_backend.py (tests are no package: loaded by path)."""
    import importlib.util

    name = "_vllm_fakes_of_test_vllm_backend"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "test_vllm_backend.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> Any:
    fakes = _vllm_fakes()
    FakeLLM, RequestOutput, SamplingParams = fakes.FakeLLM, fakes.RequestOutput, fakes.SamplingParams  # noqa: N806

    class BaseLLM(FakeLLM):
        """Also answers plain token-id prompts (the --no-chat-template path) with a fixed text."""

        def generate(self, prompts: list[Any], sampling_params: Any, use_tqdm: bool = True) -> list[Any]:
            if "prompt_logprobs" in sampling_params.kw:
                return super().generate(prompts, sampling_params, use_tqdm)
            self.calls.append((prompts, sampling_params))
            CompletionOutput = fakes.CompletionOutput  # noqa: N806
            return [RequestOutput(str(i), None, p["prompt_token_ids"], [CompletionOutput(0, "plain", [6], None,
                                                                                         None, "stop")])
                    for i, p in enumerate(prompts)]

        def chat(self, messages: list[Any], sampling_params: Any, use_tqdm: bool = True,
                 chat_template: str | None = None) -> list[Any]:
            self.templates.append(chat_template)
            return super().chat(messages, sampling_params, use_tqdm)

    BaseLLM.templates = []  # type: ignore[attr-defined]
    mod = types.ModuleType("vllm")
    mod.LLM = BaseLLM  # type: ignore[attr-defined]
    mod.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    mod.EngineArgs = EngineArgs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", mod)
    FakeLLM.instances.clear()
    yield BaseLLM


def test_vllm_engine_options_reach_the_engine_and_the_run_record(tmp_path: Path, fake_vllm: Any) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(app, [
        "eval", "--model", "vllm:org/big-32b", "--tp", "4", "--max-model-len", "8192", "--gpu-memory-utilization",
        "0.85", "--dtype", "bfloat16", "--revision", "r1", "--trust-remote-code", "--engine-arg", "enforce_eager=true",
        "-b", "ifeval", "--limit", "2", "--no-llm", "--no-progress", "--out", str(out)])
    assert res.exit_code == 0, res.output
    [llm] = fake_vllm.instances
    assert llm.model == "org/big-32b"
    assert llm.kwargs == {"enable_prefix_caching": True, "tensor_parallel_size": 4, "max_model_len": 8192,
                          "gpu_memory_utilization": 0.85, "dtype": "bfloat16", "revision": "r1",
                          "trust_remote_code": True, "enforce_eager": True}
    gen = json.loads((out / "run.json").read_text())["generation"]
    assert gen["tensor_parallel_size"] == 4 and gen["engine_args"] == {"enforce_eager": True}


def test_vllm_chat_template_choices(tmp_path: Path, fake_vllm: Any) -> None:
    tpl = tmp_path / "t.jinja"
    tpl.write_text("{{ messages[0]['content'] }}")
    base = ["eval", "--model", "vllm:org/m", "-b", "ifeval", "--limit", "1", "--no-llm", "--no-progress"]
    res = CliRunner().invoke(app, [*base, "--chat-template", str(tpl), "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert fake_vllm.templates == [tpl.read_text()]
    res = CliRunner().invoke(app, [*base, "--no-chat-template", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    llm = fake_vllm.instances[-1]
    [(prompts, _)] = llm.calls
    prompt_text = _vllm_fakes().prompt_text

    # the fake tokenizer has a template; the plain path joins the messages instead (one user message + "\n")
    rec = json.loads((tmp_path / "b" / "samples" / "ifeval.jsonl").read_text())
    assert prompt_text(prompts[0]["prompt_token_ids"]) == rec["turns"][0]["messages"][0]["content"] + "\n"
    assert rec["turns"][0]["response"] == "plain"


def test_unknown_engine_argument_names_the_option(tmp_path: Path, fake_vllm: Any) -> None:
    res = CliRunner().invoke(app, ["eval", "--model", "vllm:org/m", "--engine-arg", "tensor_paralel_size=2",
                                   "--limit", "1", "--no-llm", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    line = _one_error(res.output)
    assert "--engine-arg" in line and "tensor_paralel_size" in line and not (tmp_path / "r").exists()


def test_benchmarks_are_listed_with_source_and_data() -> None:
    res = CliRunner().invoke(app, ["benchmarks"])
    assert res.exit_code == 0
    import benchmarks

    for name in benchmarks.names():
        assert f"\n{name}: " in f"\n{res.output}"
    assert "bundled (data/ifeval_input_data.jsonl; Hub google/IFEval)" in res.output
    assert "Hugging Face Hub facebook/Multi-IF, split train" in res.output and "CSV" in res.output
    assert CliRunner().invoke(app, ["eval", "--list"]).output == res.output


def test_a_long_cpu_run_is_announced_with_an_estimate(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "m")
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", "from verinstruct.cli import main; main()", "eval", "--model", f"transformers:{path}",
           "--device", "cpu", "--limit", "40", "--max-tokens", "1000", "--chunk-size", "4", "--no-llm",
           "--no-progress", "--out", str(out)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr is not None
        first = p.stderr.readline()
        assert first.startswith(f"warning: transformers:{path} generates on the CPU: 40 samples x up to 1000 "
                                "tokens (40,000 tokens)"), first
        second = p.stderr.readline()
        assert second.startswith("verif eval: ifeval: the first 4 samples took") and "the other 36 need about" \
            in second, second
    finally:
        p.kill()
        p.communicate()
    short = subprocess.run([*cmd[:-2], "--limit", "2", "--out", str(tmp_path / "short")], capture_output=True,
                           text=True, timeout=300)
    assert short.returncode == 0 and "warning" not in short.stderr, short.stderr


def test_a_device_torch_does_not_see_names_the_option(tmp_path: Path) -> None:
    import torch

    path = tiny_model(tmp_path / "m")
    wanted = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU (cuda:0 on a CPU machine)
    res = CliRunner().invoke(app, ["eval", "--model", f"transformers:{path}", "--device", wanted, "--limit", "1",
                                   "--no-llm", "--out", str(tmp_path / "run")])
    assert res.exit_code == 2
    assert _one_error(res.output).startswith(f"error: --device: device {wanted!r}: torch sees")
    assert not (tmp_path / "run").exists()


def test_a_broken_chat_template_fails_the_run_and_the_fixed_one_generates(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "m")
    tpl = tmp_path / "t.jinja"
    tpl.write_text("{% for m in messages %}{{ m['content'] }{% endfor %}")  # a Jinja syntax error
    out = tmp_path / "run"
    cmd = ["eval", "--model", f"transformers:{path}", "--device", "cpu", "--chat-template", str(tpl), "--limit", "2",
           "--max-tokens", "2", "--no-llm", "--no-progress", "--out", str(out)]
    res = _cli(*cmd)
    assert res.returncode == 1
    [line] = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert "2 of 2 generations" in line and "cannot build the prompt" in line
    tpl.write_text(TEMPLATE)
    res = _cli(*cmd)
    assert res.returncode == 0, res.stderr[-2000:]
    recs = [json.loads(x) for x in (out / "samples" / "ifeval.jsonl").read_text().splitlines()]
    assert [r.get("failed") for r in recs] == [None, None]
    assert recs[0]["turns"][0]["prompt_tokens"] == len(
        recs[0]["turns"][0]["messages"][0]["content"].split()) + 2  # "<user> {prompt}\n<assistant>", word-level


class _FakeHub(BaseHTTPRequestHandler):
    """The Hub's file endpoint, ``/{org}/{name}/resolve/{revision}/{file}`` (HEAD and GET, with the ETag and
    X-Repo-Commit headers huggingface_hub reads), serving one folder for the revisions in ``revisions``."""

    root = Path()
    revisions: dict[str, str] = {}
    requested: list[str] = []

    def _serve(self, body: bool) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        self.requested.append(self.path)
        f = self.root / "/".join(parts[4:])
        if len(parts) >= 5 and parts[2] == "resolve" and parts[3] in self.revisions and f.is_file():
            data = f.read_bytes()
            self.send_response(200)
            self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", self.revisions[parts[3]])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)
            return
        self.send_response(404)  # other endpoints (the file-tree API) do not exist here: callers cope
        if len(parts) >= 5 and parts[2] == "resolve":
            self.send_header("X-Error-Code", "EntryNotFound" if parts[3] in self.revisions else "RevisionNotFound")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(True)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def fake_hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    _FakeHub.root = tiny_model(tmp_path / "hub-files")
    _FakeHub.revisions = {"main": "1" * 40, "v1": "2" * 40}
    _FakeHub.requested = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_hub_ids_download_for_the_model_and_the_judge(tmp_path: Path, fake_hub: str) -> None:
    fixture = Path(__file__).parent / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
    home = tmp_path / "hf"
    env = {**os.environ, "HF_ENDPOINT": fake_hub, "HF_HOME": str(home), "VERINSTRUCT_PROGRESS": "0"}
    env.pop("HF_HUB_OFFLINE", None)
    out = tmp_path / "run"
    args = ["eval", "--model", "transformers:org/tiny", "--device", "cpu", "-b", "verinstruct", "--data", str(fixture),
            "--limit", "2", "--max-tokens", "2", "--verifier", "transformers:org/judge", "--out", str(out)]
    res = _cli(*args, "--revision", "v9", env=env)  # a revision the Hub does not have
    assert res.returncode == 2
    assert _one_error(res.stderr).startswith("error: --model transformers:org/tiny: cannot load") and not out.exists()
    res = _cli(*args, "--revision", "v1", env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert any("/org/tiny/resolve/v1/model.safetensors" in p for p in _FakeHub.requested)
    assert any("/org/judge/resolve/main/model.safetensors" in p for p in _FakeHub.requested)
    assert (home / "hub" / "models--org--tiny" / "snapshots" / ("2" * 40) / "config.json").exists()
    s = json.loads((out / "summary.json").read_text())
    assert s["judge"]["used"] is True and s["judge"]["verifier"] == "transformers:org/judge"
    soft = s["benchmarks"]["verinstruct"]["metrics"]["soft_pass_rate"]
    assert soft["total"] > 0 and soft["undecided"] < soft["total"]
