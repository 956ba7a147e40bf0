"""`verif eval`, `verif benchmarks` and `verif compare`, registered into the `verif` app through the
``verinstruct.cli`` entry point.

`verif eval` is built in steps a reader can follow: check every option (:func:`model_options`, one line
naming the option, exit 2, before anything is loaded or written), load the data, compare the settings with
the folder's ``run.json`` (:func:`check_run_config`), build the model, only then write ``run.json`` and run.
Generations that failed are not answers: they are left out of the scores, retried by the next run, and make
the command end with exit 1 after writing the summary (:func:`_report_failures`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from benchmarks.base import BenchmarkError, samples_sha256
from verinstruct.cli.errors import fail as _fail

DEFAULT_MODEL = "transformers:default"
BACKENDS = ("transformers", "vllm", "openai")
DTYPES = ("auto", "bfloat16", "float16", "float32")
#: a CPU run generating more than this many tokens (samples x --max-tokens) is warned about before it starts
LONG_CPU_TOKENS = 20_000


def model_spec(model: str, base_url: list[str] | None) -> str:
    """``BACKEND:MODEL`` as given, else ``openai:M`` with --base-url, else ``transformers:M`` (an id or a path).

    A ``WORD:...`` that names no backend and no existing path is refused: it is a typo of a backend, and
    no Hub id holds a colon.
    """
    kind, sep, rest = model.partition(":")
    if sep and kind.strip().lower() in BACKENDS:
        if not rest.strip():
            raise BenchmarkError(f"--model {model!r}: no model after {kind}: (e.g. {kind}:Qwen/Qwen2.5-0.5B-Instruct)")
        return f"{kind.strip().lower()}:{rest.strip()}"
    if base_url:
        return f"openai:{model}"
    if sep and not Path(model).expanduser().exists():
        raise BenchmarkError(f"--model {model!r}: unknown backend {kind!r}; use transformers:<hub id or path>, "
                             "vllm:<hub id or path> or openai:<served name> with --base-url")
    return f"transformers:{model}"


@dataclass
class ModelOptions:
    """How the model is loaded and prompted (everything but sampling); recorded in ``run.json``."""

    api_key: str | None = None
    revision: str | None = None
    dtype: str | None = None
    device: str | None = None
    trust_remote_code: bool = False
    chat_template: Path | None = None
    no_chat_template: bool = False
    tensor_parallel_size: int | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    engine_args: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What changes generations (the API key never: it is a secret and changes nothing)."""
        out = {"revision": self.revision, "dtype": self.dtype or "auto", "trust_remote_code": self.trust_remote_code,
               "chat_template": "none" if self.no_chat_template else str(self.chat_template or "model")}
        out.update({k: v for k, v in (("tensor_parallel_size", self.tensor_parallel_size),
                                      ("max_model_len", self.max_model_len),
                                      ("gpu_memory_utilization", self.gpu_memory_utilization)) if v is not None})
        if self.engine_args:
            out["engine_args"] = dict(sorted(self.engine_args.items()))
        return out


#: options that only one backend reads: refusing them elsewhere beats ignoring them
_ONLY = {
    "--api-key": ("openai",), "--revision": ("transformers", "vllm"), "--dtype": ("transformers", "vllm"),
    "--device": ("transformers",), "--trust-remote-code": ("transformers", "vllm"),
    "--chat-template": ("transformers", "vllm"), "--no-chat-template": ("transformers", "vllm"),
    "--tensor-parallel-size": ("vllm",), "--max-model-len": ("transformers", "vllm"),
    "--gpu-memory-utilization": ("vllm",), "--engine-arg": ("vllm",), "--batch-size": ("transformers",),
    "--concurrency": ("openai",),
}
_WHY = {"openai": "the server loads and prompts the model itself", "transformers": "it is a vLLM engine option",
        "vllm": "it is for the transformers backend (vLLM picks its GPUs: set CUDA_VISIBLE_DEVICES)"}


def parse_engine_args(items: list[str] | None) -> dict[str, Any]:
    """``--engine-arg KEY=VALUE`` (repeatable): VALUE is read as JSON when it parses (numbers, booleans,
    objects), else kept as a string, the way ``vllm serve``'s options read."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise BenchmarkError(f"--engine-arg {item!r}: expected KEY=VALUE, e.g. enforce_eager=true")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def check_model_options(spec: str, opts: ModelOptions, given: dict[str, bool], base_url: list[str] | None) -> None:
    """Every option the chosen backend does not read is a one-line error naming it."""
    kind = spec.split(":", 1)[0]
    if kind == "openai" and not base_url:
        raise BenchmarkError(f"--model {spec}: an openai: model needs --base-url URL (the OpenAI-compatible "
                             "server that serves it, e.g. http://127.0.0.1:8000/v1)")
    if kind != "openai" and base_url:
        raise BenchmarkError(f"--base-url is for openai:<model> (a server); --model {spec} is loaded here")
    for opt, kinds in _ONLY.items():
        if given.get(opt) and kind not in kinds:
            raise BenchmarkError(f"{opt} does not apply to --model {spec}: {_WHY[kind]}")
    if opts.chat_template is not None and opts.no_chat_template:
        raise BenchmarkError("--chat-template and --no-chat-template exclude each other")
    if opts.dtype is not None and opts.dtype not in DTYPES:
        raise BenchmarkError(f"--dtype must be one of {', '.join(DTYPES)}, got {opts.dtype!r}")
    if opts.device is not None and not (opts.device in ("auto", "cpu", "mps") or opts.device.split(":")[0] == "cuda"):
        raise BenchmarkError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {opts.device!r}")
    if spec.split(":", 1)[1] == "default":
        for opt, value in (("--revision", opts.revision), ("--trust-remote-code", opts.trust_remote_code)):
            if value:
                raise BenchmarkError(f"{opt} does not apply to --model {spec}: the embedded model ships with "
                                     "this package")
    clash = sorted(set(opts.engine_args) & {"model", "tensor_parallel_size", "max_model_len", "dtype", "revision",
                                           "gpu_memory_utilization", "trust_remote_code", "seed"})
    if clash:
        raise BenchmarkError(f"--engine-arg {clash[0]}: use its own option (--{clash[0].replace('_', '-')})"
                             if clash[0] != "model" else "--engine-arg model: name the model with --model")


def backend_kwargs(spec: str, opts: ModelOptions, *, seed: int, batch_size: int, concurrency: int,
                   template_text: str | None) -> dict[str, Any]:
    """Keyword arguments of ``verifier.factory.build_backend`` for the model being evaluated."""
    kind = spec.split(":", 1)[0]
    kw: dict[str, Any] = {"seed": seed}
    if kind == "openai":
        kw.update(concurrency=concurrency)
        if opts.api_key:
            kw["api_key"] = opts.api_key
        return kw
    if opts.trust_remote_code:
        kw["trust_remote_code"] = True
    if opts.revision is not None:
        kw["revision"] = opts.revision
    if kind == "transformers":
        kw.update(batch_size=batch_size, chat_template=template_text, local_files_only=False,
                  no_chat_template=opts.no_chat_template)
        if opts.dtype is not None:
            kw["dtype"] = opts.dtype
        if opts.device is not None:
            kw["device"] = opts.device
        if opts.max_model_len is not None:
            kw["max_context"] = opts.max_model_len
        return kw
    kw.update(opts.engine_args)
    for k in ("tensor_parallel_size", "max_model_len", "gpu_memory_utilization"):
        if getattr(opts, k) is not None:
            kw[k] = getattr(opts, k)
    if opts.dtype is not None:
        kw["dtype"] = opts.dtype
    if template_text is not None:
        kw["chat_template"] = template_text
    if opts.no_chat_template:
        kw["no_chat_template"] = True
    return kw


def _data_paths(data: list[str] | None, names: list[str]) -> dict[str, str]:
    """``--data PATH`` (one benchmark) or ``--data NAME=PATH`` (any number)."""
    out: dict[str, str] = {}
    for d in data or []:
        name, sep, path = d.partition("=")
        if sep and name in names:
            out[name] = path
        elif len(names) == 1:
            out[names[0]] = d
        else:
            raise BenchmarkError(f"--data {d!r}: with several benchmarks write NAME=PATH (NAME one of {', '.join(names)})")
    return out


class _Scorers:
    """One Scorer without an LLM, and one with the verifier, built the first time a soft constraint needs it."""

    def __init__(self, spec: str | None, workers: int | None, **verifier_kwargs: Any) -> None:
        self.spec, self.workers, self.verifier_kwargs = spec, workers, verifier_kwargs
        self.plain: Any = None
        self.judged: Any = None

    def __call__(self, needs_llm: bool) -> Any:
        from verinstruct.scorer import Scorer

        if needs_llm and self.spec is not None:
            if self.judged is None:
                from verifier import build_verifier

                self.judged = Scorer(build_verifier(self.spec, **self.verifier_kwargs), sandbox_workers=self.workers)
            return self.judged
        if self.plain is None:
            self.plain = Scorer(None, sandbox_workers=self.workers)
        return self.plain

    @property
    def used(self) -> bool:
        return self.judged is not None

    def close(self) -> None:
        for s in (self.plain, self.judged):
            if s is not None:
                s.close()


RUN_FILES = ("run.json", "summary.json", "summary.md", "per_type.png", "report.html")


def check_run_config(out: Path, config: dict[str, Any], overwrite: bool, force_resume: bool) -> None:
    """Refuse to resume a run folder made with other settings (model, generation, data or judge): its
    samples would mix with these. Only reads: nothing is written until the model has loaded."""
    if out.exists() and not out.is_dir():
        raise BenchmarkError(f"--out {str(out)!r} is a file; give a folder (it will hold samples/ and summary.json)")
    path = out / "run.json"
    if overwrite or force_resume or not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BenchmarkError(f"{path} is not valid JSON; use --overwrite to start again") from None
    diff = sorted(k for k in set(old) | set(config) if k != "force_resumed" and old.get(k) != config.get(k))
    if diff and _has_answers(out):
        raise BenchmarkError(f"{out} holds a run with different settings ({', '.join(diff)}); use another --out, "
                             "--overwrite to start again or --force-resume to continue anyway")


def _has_answers(out: Path) -> bool:
    """Whether ``out`` holds a generated sample; one holding only failed generations (a wrong model name, a
    server that was down) mixes nothing when the settings change: those samples are generated again."""
    from benchmarks.runner import generation_failure, read_done

    folder = out / "samples"
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    return any(generation_failure(r) is None for f in files for r in read_done(f))


def write_run_config(out: Path, config: dict[str, Any], overwrite: bool, force_resume: bool) -> None:
    """Start ``out`` again (``overwrite``) or mark a forced resume, then record the settings in ``run.json``."""
    import shutil

    if overwrite and out.is_dir():
        shutil.rmtree(out / "samples", ignore_errors=True)
        for f in RUN_FILES:
            (out / f).unlink(missing_ok=True)
    path = out / "run.json"
    if force_resume and path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if any(old.get(k) != config.get(k) for k in set(old) | set(config) if k != "force_resumed"):
            config = {**config, "force_resumed": True}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _positive(checks: list[tuple[str, Any, bool, str]]) -> None:
    for opt, v, ok, allowed in checks:
        if not ok:
            raise BenchmarkError(f"{opt} must be {allowed}, got {v!r}")


def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="BACKEND:MODEL: transformers:default (embedded SmolLM2), transformers:<hub id or path>, vllm:<hub id or path>, openai:<served name> (with --base-url); a bare name means transformers:, or openai: with --base-url", rich_help_panel="Model")] = DEFAULT_MODEL,
    benchmarks: Annotated[str, typer.Option("--benchmarks", "-b", help="comma-separated benchmark names (verif benchmarks lists them)")] = "ifeval",
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="first N samples of each benchmark")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (resumed when it exists)")] = Path("out/eval"),
    list_benchmarks: Annotated[bool, typer.Option("--list", help="list the benchmarks (name, source, data) and exit")] = False,
    base_url: Annotated[list[str] | None, typer.Option("--base-url", help="OpenAI-compatible endpoint for the model (repeatable)", rich_help_panel="Model")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="API key of the model's endpoint (default: $VERIF_API_KEY, then $OPENAI_API_KEY)", rich_help_panel="Model")] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Hub branch, tag or commit of the model (transformers, vllm)", rich_help_panel="Model")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="auto, bfloat16, float16 or float32 (transformers, vllm; auto: bfloat16 on GPU, float32 on CPU)", rich_help_panel="Model")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps (transformers)", rich_help_panel="Model")] = None,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code", help="run the model repository's own Python code (transformers, vllm)", rich_help_panel="Model")] = False,
    chat_template: Annotated[Path | None, typer.Option("--chat-template", help="Jinja chat template file replacing the model's (transformers, vllm)", rich_help_panel="Model")] = None,
    no_chat_template: Annotated[bool, typer.Option("--no-chat-template", help="base models: send the messages as plain text, no chat template (transformers, vllm)", rich_help_panel="Model")] = False,
    tensor_parallel_size: Annotated[int | None, typer.Option("--tensor-parallel-size", "--tp", help="GPUs one model is split over (vllm)", rich_help_panel="Model")] = None,
    max_model_len: Annotated[int | None, typer.Option("--max-model-len", help="context length in tokens, prompt + answer (vllm, transformers)", rich_help_panel="Model")] = None,
    gpu_memory_utilization: Annotated[float | None, typer.Option("--gpu-memory-utilization", help="share of GPU memory vLLM may use, 0-1 (vllm)", rich_help_panel="Model")] = None,
    engine_arg: Annotated[list[str] | None, typer.Option("--engine-arg", help="any other vllm.LLM argument as KEY=VALUE (JSON value), repeatable (vllm)", rich_help_panel="Model")] = None,
    system_prompt: Annotated[str | None, typer.Option("--system-prompt", help="system message opening every conversation")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="new tokens per answer")] = 1024,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", help="nucleus sampling (with temperature > 0)")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="sampling seed")] = 0,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="prompts per forward batch (transformers; default 8)")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="requests in flight at once (openai; default 32)")] = None,
    thinking: Annotated[str, typer.Option("--thinking", help="strip: score the answer after </think>; keep: score everything")] = "strip",
    responses: Annotated[Path | None, typer.Option("--responses", help="score these generations instead of running a model")] = None,
    missing_responses: Annotated[str, typer.Option("--missing-responses", help="with --responses, a sample with no response: error (refuse the file), fail (every constraint False, in every total, as the IFEval/IFBench authors' run_eval.py), skip (left out of every total); counted in summary.json")] = "error",
    data: Annotated[list[str] | None, typer.Option("--data", help="local benchmark data: PATH, or NAME=PATH with several benchmarks")] = None,
    verifier_spec: Annotated[str, typer.Option("--verifier", help="LLM judge for soft constraints (BACKEND:MODEL)", rich_help_panel="Judge")] = "transformers:default",
    verifier_url: Annotated[list[str] | None, typer.Option("--verifier-base-url", help="OpenAI-compatible endpoint for the judge (repeatable)", rich_help_panel="Judge")] = None,
    judge_mode: Annotated[str, typer.Option("--judge-mode", help="judge decision: score (one forward pass) or generate", rich_help_panel="Judge")] = "score",
    judge_template: Annotated[str | None, typer.Option("--judge-template", help="judge prompt template name or path", rich_help_panel="Judge")] = None,
    judge_cache: Annotated[Path | None, typer.Option("--judge-cache", help="judge result cache (SQLite path)", rich_help_panel="Judge")] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="no judge: soft constraints stay undecided", rich_help_panel="Judge")] = False,
    sandbox_workers: Annotated[int | None, typer.Option("--sandbox-workers", help="processes running dataset code")] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="samples generated, scored and appended together")] = 16,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="start --out again instead of resuming")] = False,
    force_resume: Annotated[bool, typer.Option("--force-resume", help="resume --out even when its run.json records other settings (the run then mixes them; run.json says so)")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar or progress lines")] = False,
) -> None:
    """Evaluate a model (or stored responses) on instruction-following benchmarks; resumable.

    Generations that fail (server down, wrong model name, a broken template) are not scored: the command
    ends with exit 1 and running it again generates them again.
    """
    if list_benchmarks:
        benchmarks_cmd()
        return
    import benchmarks as registry
    from benchmarks.runner import THINKING, BackendGenerator, RunOptions, run_benchmark
    from verifier.backends.base import GenerationConfig

    names = [b.strip() for b in benchmarks.split(",") if b.strip()]
    scorers: _Scorers | None = None
    backend = None
    results: list[Any] = []
    judge_stats: Any = None
    try:
        if not names:
            raise BenchmarkError("--benchmarks is empty (verif benchmarks lists them)")
        if thinking not in THINKING:
            raise BenchmarkError(f"--thinking must be one of {', '.join(THINKING)}, got {thinking!r}")
        _positive([("--max-tokens", max_tokens, max_tokens >= 1, "an integer >= 1"),
                   ("--batch-size", batch_size, batch_size is None or batch_size >= 1, "an integer >= 1"),
                   ("--chunk-size", chunk_size, chunk_size >= 1, "an integer >= 1"),
                   ("--concurrency", concurrency, concurrency is None or concurrency >= 1, "an integer >= 1"),
                   ("--temperature", temperature, temperature >= 0, ">= 0 (0 = greedy)"),
                   ("--top-p", top_p, 0 < top_p <= 1, "in (0, 1]"),
                   ("--limit", limit, limit is None or limit >= 1, "an integer >= 1"),
                   ("--tensor-parallel-size", tensor_parallel_size,
                    tensor_parallel_size is None or tensor_parallel_size >= 1, "an integer >= 1"),
                   ("--max-model-len", max_model_len, max_model_len is None or max_model_len >= 1, "an integer >= 1"),
                   ("--gpu-memory-utilization", gpu_memory_utilization,
                    gpu_memory_utilization is None or 0 < gpu_memory_utilization <= 1, "in (0, 1]"),
                   ("--sandbox-workers", sandbox_workers, sandbox_workers is None or sandbox_workers >= 1,
                    "an integer >= 1")])
        if judge_mode not in ("score", "generate"):
            raise BenchmarkError(f"--judge-mode must be score or generate, got {judge_mode!r}")
        if overwrite and force_resume:
            raise BenchmarkError("--overwrite and --force-resume exclude each other")
        from benchmarks.responses import MISSING_POLICIES

        if missing_responses not in MISSING_POLICIES:
            raise BenchmarkError(f"--missing-responses must be one of {', '.join(MISSING_POLICIES)}, "
                                 f"got {missing_responses!r}")
        if responses is None and missing_responses != "error":
            raise BenchmarkError("--missing-responses applies only with --responses")
        mopts = ModelOptions(api_key=api_key, revision=revision, dtype=dtype, device=device,
                             trust_remote_code=trust_remote_code, chat_template=chat_template,
                             no_chat_template=no_chat_template, tensor_parallel_size=tensor_parallel_size,
                             max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                             engine_args=parse_engine_args(engine_arg))
        given = {"--api-key": api_key is not None, "--revision": revision is not None, "--dtype": dtype is not None,
                 "--device": device is not None, "--trust-remote-code": trust_remote_code,
                 "--chat-template": chat_template is not None, "--no-chat-template": no_chat_template,
                 "--tensor-parallel-size": tensor_parallel_size is not None,
                 "--max-model-len": max_model_len is not None,
                 "--gpu-memory-utilization": gpu_memory_utilization is not None, "--engine-arg": bool(engine_arg),
                 "--batch-size": batch_size is not None, "--concurrency": concurrency is not None}
        benches = [registry.get(n) for n in names]
        if judge_template is None and not no_llm:  # the benchmarks' own judge prompt, when they declare one
            # one verifier serves the run: benchmarks that want different judge prompts are run separately
            declared = sorted({b.judge_template or "generic" for b in benches if b.needs_verifier})
            if len(declared) > 1:
                raise BenchmarkError(f"these benchmarks declare different judge prompts ({', '.join(declared)}): "
                                     "run them separately or pass --judge-template")
            if declared and declared[0] != "generic":
                judge_template = declared[0]
        judge: dict[str, Any] = {"no_llm": True} if no_llm else {
            "verifier": verifier_spec, "base_url": list(verifier_url or []), "mode": judge_mode,
            "template": judge_template}
        if responses is not None:
            spec = f"responses:{responses}"
            used = [o for o, g in given.items() if g] + (["--base-url"] if base_url else [])
            if used:
                raise BenchmarkError(f"{used[0]} does not apply with --responses (no model is run)")
            generation: dict[str, Any] = {"responses": str(responses), "thinking": thinking,
                                          "system_prompt": system_prompt, "missing_responses": missing_responses}
        else:
            spec = model_spec(model, base_url)
            check_model_options(spec, mopts, given, base_url)
            generation = {"backend": spec.split(":", 1)[0], "max_tokens": max_tokens, "temperature": temperature,
                          "top_p": top_p, "seed": seed, "system_prompt": system_prompt, "thinking": thinking,
                          "base_url": list(base_url or []), **mopts.record()}
        if not no_llm:
            _check_judge(verifier_spec, verifier_url)
        try:
            template_text = chat_template.read_text(encoding="utf-8") if chat_template is not None else None
        except (OSError, UnicodeDecodeError) as e:
            raise BenchmarkError(f"--chat-template {str(chat_template)!r}: cannot read it "
                                 f"({getattr(e, 'strerror', None) or e})") from None
        paths = _data_paths(data, [b.name for b in benches])
        loaded = [(b, b.load_samples(paths.get(b.name), limit)) for b in benches]
        config = {"model": spec, "generation": generation, "judge": judge,
                  "data": {b.name: paths.get(b.name) for b in benches}}
        check_run_config(out, config, overwrite, force_resume)
        vkw: dict[str, Any] = {"mode": judge_mode, "template": judge_template, "cache_path": judge_cache}
        if verifier_url:
            vkw["base_url"] = list(verifier_url)
        if verifier_spec.split(":", 1)[0].strip().lower() == "transformers":
            vkw["local_files_only"] = False  # a judge named by Hub id downloads, as the model does
        scorers = _Scorers(None if no_llm else verifier_spec, sandbox_workers, **vkw)
        if responses is not None:
            from benchmarks.responses import ResponseFile

            rf = ResponseFile(responses)
            gens: list[Any] = [rf.for_samples(b.name, s, missing=missing_responses) for b, s in loaded]
            loaded = _apply_missing(loaded, gens, missing_responses, responses)
        else:
            backend = _build_model(spec, base_url, backend_kwargs(
                spec, mopts, seed=seed, batch_size=batch_size or 8, concurrency=concurrency or 32,
                template_text=template_text))
            gen = BackendGenerator(backend, GenerationConfig(max_tokens=max_tokens, temperature=temperature,
                                                             top_p=top_p))
            gens = [gen] * len(loaded)
        write_run_config(out, config, overwrite, force_resume)
        opts = RunOptions(system_prompt=system_prompt, thinking=thinking, chunk_size=chunk_size,
                          progress=not no_progress,
                          estimate=_warn_if_long_cpu_run(backend, spec, loaded, max_tokens, out))
        stopped = False
        for (bench, samples), gen in zip(loaded, gens, strict=True):
            res = run_benchmark(bench, samples, None if stopped else gen, scorers, out, opts)
            stopped = stopped or res.stopped
            results.append(res)
        summary = _summary(results, spec, generation, judge, scorers,
                           data_sha256={b.name: samples_sha256(samples) for b, samples in loaded},
                           missing={b.name: (missing_responses, len(g.missing)) for (b, _), g in zip(loaded, gens,
                                                                                                     strict=True)}
                           if responses is not None else None)
        table = _write(out, summary)
        judge_stats = scorers.judged.verifier.stats if scorers.used else None
    except KeyboardInterrupt:
        done = sum(len(r.records) for r in results)
        raise _fail(f"interrupted: every finished chunk is saved in {out}/samples/; run the same command again "
                    f"to resume{f' ({done} samples of finished benchmarks kept)' if done else ''}", code=130) from None
    except (BenchmarkError, OSError, ValueError, ImportError) as e:
        raise _fail(" ".join(str(e).split())) from None
    finally:
        if scorers is not None:
            scorers.close()
        if backend is not None:
            backend.close()
    typer.echo(table)
    typer.echo(f"wrote {out}/summary.json, summary.md, per_type.png, report.html, samples/", err=True)
    sys.stdout.flush()
    _report_failures(results, spec, base_url, out)
    _report_judge(judge_stats, verifier_spec, verifier_url, out)


def _report_judge(st: Any, spec: str, urls: list[str] | None, out: Path) -> None:
    """A judge that never answered is an error (exit 1), as in `verif score`: every soft verdict of the run
    is undecided; some failed requests are a warning."""
    if st is None or not st.backend_items:
        return
    where = f" at {', '.join(urls)}" if urls else ""
    if st.errors == st.backend_items and not st.cache_hits:
        raise _fail(f"the judge {spec}{where} never answered: all {st.errors} requests failed, so every soft "
                    f"verdict is undecided (kept in {out}: fix the judge and use --overwrite to judge again)", code=1)
    if st.errors:
        typer.echo(f"warning: {st.errors} of {st.backend_items} judge requests to {spec}{where} failed; those soft "
                   "verdicts are undecided", err=True)


def _check_judge(spec: str, urls: list[str] | None) -> None:
    """The judge is built only when a soft constraint needs it (maybe late in a run): check its spec first."""
    from verifier.factory import parse_spec

    try:
        kind, _ = parse_spec(spec)
    except ValueError as e:
        raise BenchmarkError(f"--verifier: {e}") from None
    if kind == "openai" and not urls:
        raise BenchmarkError(f"--verifier {spec} needs --verifier-base-url URL (the server that serves it)")
    if kind != "openai" and urls:
        raise BenchmarkError(f"--verifier-base-url is for an openai:<model> judge; --verifier {spec} is loaded here")


def _build_model(spec: str, base_url: list[str] | None, kwargs: dict[str, Any]) -> Any:
    """The model's backend; a model that cannot be loaded is one line naming ``--model``."""
    from verifier.factory import build_backend

    try:
        return build_backend(spec, base_url=base_url, **kwargs)
    except ImportError as e:
        raise BenchmarkError(f"--model {spec}: {e}") from None
    except (OSError, ValueError) as e:
        msg = str(e)
        if msg.startswith("unknown vLLM engine argument"):
            raise BenchmarkError(f"--engine-arg: {msg}") from None
        if msg.startswith("device "):
            raise BenchmarkError(f"--device: {msg}") from None
        raise BenchmarkError(msg if msg.startswith("--") else f"--model {spec}: {msg}") from None


def _warn_if_long_cpu_run(backend: Any, spec: str, loaded: list[tuple[Any, list[Any]]], max_tokens: int,
                          out: Path) -> bool:
    """Before a run that generates many tokens on a CPU: say so, and how to look first; True when warned
    (the runner then prints an estimate of the whole run after its first chunk)."""
    if backend is None or getattr(backend, "kind", "") != "transformers" or str(getattr(backend, "device", "")) != "cpu":
        return False
    done = _done_counts(out, loaded)
    todo = sum(len(s) - done.get(b.name, 0) for b, s in loaded)
    bound = todo * max_tokens
    if bound <= LONG_CPU_TOKENS:
        return False
    typer.echo(f"warning: {spec} generates on the CPU: {todo} samples x up to {max_tokens} tokens "
               f"({bound:,} tokens) can take hours; an estimate follows the first chunk. For a first look use "
               "--limit 20 --max-tokens 256; for a full run a GPU (--device cuda, vllm:) or a server (openai:)",
               err=True)
    return True


def _done_counts(out: Path, loaded: list[tuple[Any, list[Any]]]) -> dict[str, int]:
    from benchmarks.runner import generation_failure, read_done

    counts = {}
    for b, samples in loaded:
        ids = {s.id for s in samples}
        path = out / "samples" / f"{b.name}.jsonl"
        counts[b.name] = len({r["id"] for r in read_done(path) if r["id"] in ids and generation_failure(r) is None})
    return counts


def _apply_missing(loaded: list[tuple[Any, list[Any]]], gens: list[Any], policy: str, path: Path
                   ) -> list[tuple[Any, list[Any]]]:
    """Say on stderr how many samples have no response in ``path`` and what ``--missing-responses`` does with
    them; under ``skip`` they are left out of the samples run (and so of every total and the data hash)."""
    out = []
    for (bench, samples), gen in zip(loaded, gens, strict=True):
        if gen.missing:
            what = ("scored as failing every constraint" if policy == "fail" else "left out of every total")
            typer.echo(f"verif eval: {bench.name}: {len(gen.missing)} samples have no response in {path} "
                       f"(ids {', '.join(gen.missing[:8])}{' ...' if len(gen.missing) > 8 else ''}): {what} "
                       f"(--missing-responses {policy})", err=True)
        if policy == "skip" and gen.missing:
            drop = set(gen.missing)
            samples = [s for s in samples if s.id not in drop]
        out.append((bench, samples))
    return out


def _summary(results: list[Any], spec: str, generation: dict[str, Any], judge: dict[str, Any],
             scorers: _Scorers, data_sha256: dict[str, str] | None = None,
             missing: dict[str, tuple[str, int]] | None = None) -> dict[str, Any]:
    """``build_summary`` plus what it cannot know: failed generations per benchmark, whether the judge ran, and
    (with ``--responses``) how many samples had no response and what was done with them."""
    from benchmarks.report import build_summary

    if not judge.get("no_llm"):
        judge = {**judge, "template": scorers.judged.verifier.template.name if scorers.used else judge["template"],
                 "used": scorers.used}
    summary = build_summary(results, model=spec, generation=generation, judge=None if judge.get("no_llm") else judge,
                            data_sha256=data_sha256)
    for r in results:
        entry = summary["benchmarks"][r.benchmark.name]
        entry["failed_generation"] = len(r.failed)
        if r.missing:
            entry["not_generated"] = r.missing
        if missing is not None and r.benchmark.name in missing:
            policy, n = missing[r.benchmark.name]
            scored = sum(1 for rec in r.records if rec.get("missing_response"))
            entry["missing_responses"] = {"policy": policy, "count": n if policy == "skip" else scored}
    return summary


def _write(out: Path, summary: dict[str, Any]) -> str:
    """``summary.json``, ``summary.md``, ``per_type.png`` and ``report.html``; returns the table to print."""
    from benchmarks.html_report import write_report
    from benchmarks.report import write_outputs

    table = write_outputs(out, summary)
    write_report([out], out / "report.html")
    return table


def _report_failures(results: list[Any], spec: str, base_url: list[str] | None, out: Path) -> None:
    """Failed generations end the command with exit 1 and one line: how many, the commonest reasons, and
    that running the same command again generates them again (as `verif score` does for a dead verifier)."""
    from collections import Counter

    from benchmarks.runner import generation_failure

    failed = [(r.benchmark.name, generation_failure(rec)) for r in results for rec in r.failed]
    missing = sum(r.missing for r in results)
    if not failed and not missing:
        return
    total = sum(len(r.records) + len(r.failed) + r.missing for r in results)
    why = Counter(str(e).split(": ", 1)[-1][:160] for _, e in failed).most_common(2)
    reasons = "; ".join(f"{n}x {w}" for w, n in why)
    where = f" at {', '.join(base_url)}" if base_url else ""
    stopped = ""
    if any(r.stopped for r in results):
        stopped = "; stopped after a first chunk that failed entirely" + (f", {missing} samples not tried"
                                                                          if missing else "")
    raise _fail(f"{len(failed)} of {total} generations by {spec}{where} failed ({reasons}){stopped}: they are not "
                f"scored; fix the cause and run the same command again to generate them (kept in {out})", code=1)


def benchmarks_cmd() -> None:
    """List the benchmarks: name, what it measures, where its data comes from and what `--data` takes."""
    import textwrap

    import benchmarks as registry

    for name in registry.names():
        b = registry.get(name)
        doc = (sys.modules[type(b).__module__].__doc__ or "").strip().split("\n\n")
        title = " ".join(doc[0].split()) if doc else ""
        if b.bundled:
            source = f"bundled ({b.bundled}; Hub {b.hub_id})" if b.hub_id else f"bundled ({b.bundled})"
        elif b.hub_id:
            source = f"Hugging Face Hub {b.hub_id}" + (f" ({b.hub_config})" if b.hub_config else "") + \
                f", split {b.hub_split}; offline: --data PATH"
        else:
            source = "--data PATH only"
        typer.echo(f"{name}: {title}")
        typer.echo(f"    source: {source}")
        if len(doc) > 1:
            typer.echo(textwrap.fill(" ".join(doc[1].replace("``", "").split()), width=110, initial_indent="    data: ",
                                     subsequent_indent="        "))
        typer.echo(f"    metrics: {', '.join(b.headline) or 'see summary.json'}")


def compare_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="run directories (each with summary.json); the first is the base")],
    all_metrics: Annotated[bool, typer.Option("--all", help="every metric, not only the headline ones")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="refuse (exit 2) when runs differ in benchmark version, data, sample count, totals or judge")] = False,
) -> None:
    """Print runs side by side with their differences from the first (e.g. base vs RL checkpoint), a paired test
    per metric when they share samples, and a warning for everything that makes them not comparable."""
    from benchmarks.compare import compare, load_summary, render

    try:
        runs = [(str(d), load_summary(d)) for d in dirs]
        rows = compare(runs, all_metrics=all_metrics, dirs=dirs)
    except (BenchmarkError, OSError) as e:
        raise _fail(str(e)) from None
    warnings = list(dict.fromkeys(w for r in rows for w in r["warnings"]))
    if strict and warnings:
        raise _fail(f"runs are not comparable ({len(warnings)} differences; first: {warnings[0]})")
    typer.echo(json.dumps(rows, indent=2) if json_out else render(runs, rows))


def report_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="run directories (each with summary.json); several = a comparison, the first is the base")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file (default: RUN_DIR/report.html for one run, compare.html for several)")] = None,
) -> None:
    """One self-contained HTML page of a run (or a comparison of runs): summary, per-type chart, every sample's verdicts."""
    from benchmarks.html_report import write_report

    target = out or (dirs[0] / "report.html" if len(dirs) == 1 else Path("compare.html"))
    try:
        write_report(dirs, target)
    except (BenchmarkError, OSError) as e:
        raise _fail(str(e)) from None
    typer.echo(f"wrote {target}", err=True)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
    app.command("benchmarks")(benchmarks_cmd)
    app.command("compare")(compare_cmd)
    app.command("report")(report_cmd)
