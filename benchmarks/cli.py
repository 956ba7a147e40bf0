"""`verif eval` and `verif compare`, registered into the `verif` app through the ``verinstruct.cli`` entry point."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from benchmarks.base import BenchmarkError

DEFAULT_MODEL = "transformers:default"
BACKENDS = ("transformers", "vllm", "openai")


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(code=code)


def model_spec(model: str, base_url: list[str] | None) -> str:
    """``BACKEND:MODEL`` as given, else ``openai:M`` with --base-url, else ``transformers:M``."""
    kind, sep, _ = model.partition(":")
    if sep and kind.lower() in BACKENDS:
        return model
    return f"openai:{model}" if base_url else f"transformers:{model}"


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


def _check_run_config(out: Path, config: dict[str, Any], overwrite: bool) -> None:
    """Refuse to resume a run directory made with different generation settings (it would mix results)."""
    path = out / "run.json"
    if overwrite and out.exists():
        import shutil

        for sub in ("samples",):
            shutil.rmtree(out / sub, ignore_errors=True)
        for f in ("run.json", "summary.json", "summary.md", "per_type.png", "report.html"):
            (out / f).unlink(missing_ok=True)
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        if diff:
            raise BenchmarkError(
                f"{out} holds a run with different settings ({', '.join(diff)}); use another --out or --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="BACKEND:MODEL (transformers:default = embedded SmolLM2, transformers:<id|path>, vllm:<model>, openai:<model>) or a bare model name")] = DEFAULT_MODEL,
    benchmarks: Annotated[str, typer.Option("--benchmarks", "-b", help="comma-separated benchmark names")] = "ifeval",
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="first N samples of each benchmark")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory (resumed when it exists)")] = Path("out/eval"),
    base_url: Annotated[list[str] | None, typer.Option("--base-url", help="OpenAI-compatible endpoint for the model (repeatable)")] = None,
    system_prompt: Annotated[str | None, typer.Option("--system-prompt", help="system message opening every conversation")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="new tokens per answer")] = 1024,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", help="nucleus sampling (with temperature > 0)")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="sampling seed")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="prompts per forward batch (transformers)")] = 8,
    concurrency: Annotated[int, typer.Option("--concurrency", help="requests in flight at once (openai)")] = 32,
    chat_template: Annotated[Path | None, typer.Option("--chat-template", help="Jinja chat template file replacing the model's (transformers)")] = None,
    thinking: Annotated[str, typer.Option("--thinking", help="strip: score the answer after </think>; keep: score everything")] = "strip",
    responses: Annotated[Path | None, typer.Option("--responses", help="score these generations instead of running a model")] = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="local benchmark data: PATH, or NAME=PATH with several benchmarks")] = None,
    verifier_spec: Annotated[str, typer.Option("--verifier", help="LLM judge for soft constraints (BACKEND:MODEL)")] = "transformers:default",
    verifier_url: Annotated[list[str] | None, typer.Option("--verifier-base-url", help="OpenAI-compatible endpoint for the judge (repeatable)")] = None,
    judge_mode: Annotated[str, typer.Option("--judge-mode", help="judge decision: score (one forward pass) or generate")] = "score",
    judge_template: Annotated[str | None, typer.Option("--judge-template", help="judge prompt template name or path")] = None,
    judge_cache: Annotated[Path | None, typer.Option("--judge-cache", help="judge result cache (SQLite path)")] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="no judge: soft constraints stay undecided")] = False,
    sandbox_workers: Annotated[int | None, typer.Option("--sandbox-workers", help="processes running dataset code")] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="samples generated, scored and appended together")] = 16,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="start --out again instead of resuming")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
) -> None:
    """Evaluate a model (or stored responses) on instruction-following benchmarks; resumable."""
    import benchmarks as registry
    from benchmarks.base import samples_sha256
    from benchmarks.report import build_summary, write_outputs
    from benchmarks.runner import THINKING, BackendGenerator, RunOptions, run_benchmark
    from verifier.backends.base import GenerationConfig

    names = [b.strip() for b in benchmarks.split(",") if b.strip()]
    if not names:
        raise _fail("--benchmarks is empty")
    if thinking not in THINKING:
        raise _fail(f"--thinking must be one of {', '.join(THINKING)}, got {thinking!r}")
    for opt, v, ok in (("--max-tokens", max_tokens, max_tokens >= 1), ("--batch-size", batch_size, batch_size >= 1),
                       ("--chunk-size", chunk_size, chunk_size >= 1), ("--concurrency", concurrency, concurrency >= 1), ("--temperature", temperature, temperature >= 0),
                       ("--top-p", top_p, 0 < top_p <= 1), ("--limit", limit, limit is None or limit >= 1)):
        if not ok:
            raise _fail(f"{opt} got {v!r}")
    if judge_mode not in ("score", "generate"):
        raise _fail(f"--judge-mode must be score or generate, got {judge_mode!r}")
    vkw: dict[str, Any] = {"mode": judge_mode, "template": judge_template, "cache_path": judge_cache}
    if verifier_url:
        vkw["base_url"] = list(verifier_url)
    scorers = _Scorers(None if no_llm else verifier_spec, sandbox_workers, **vkw)
    backend = None
    try:
        benches = [registry.get(n) for n in names]
        if judge_template is None and not no_llm:  # the benchmarks' own judge prompt, when they declare one
            # one verifier serves the run: benchmarks that want different judge prompts are run separately
            declared = sorted({b.judge_template or "generic" for b in benches if b.needs_verifier})
            if len(declared) > 1:
                raise BenchmarkError(f"these benchmarks declare different judge prompts ({', '.join(declared)}): "
                                     "run them separately or pass --judge-template")
            if declared and declared[0] != "generic":
                judge_template = vkw["template"] = declared[0]
                scorers.verifier_kwargs["template"] = declared[0]
        paths = _data_paths(data, [b.name for b in benches])
        loaded = [(b, b.load_samples(paths.get(b.name), limit)) for b in benches]
        template_text = chat_template.read_text(encoding="utf-8") if chat_template is not None else None
        if responses is not None:
            from benchmarks.responses import ResponseFile

            rf = ResponseFile(responses)
            spec = f"responses:{responses}"
            generation: dict[str, Any] = {"responses": str(responses), "thinking": thinking,
                                          "system_prompt": system_prompt}
        else:
            spec = model_spec(model, base_url)
            if chat_template is not None and not spec.startswith("transformers:"):
                raise BenchmarkError("--chat-template applies to transformers models only (vLLM and servers use "
                                     "the model's own template)")
            generation = {"backend": spec.split(":", 1)[0], "max_tokens": max_tokens, "temperature": temperature,
                          "top_p": top_p, "seed": seed, "system_prompt": system_prompt, "thinking": thinking,
                          "chat_template": str(chat_template) if chat_template else "model",
                          "base_url": list(base_url or [])}
        _check_run_config(out, {"model": spec, "generation": generation,
                                "data": {b.name: paths.get(b.name) for b in benches}}, overwrite)
        opts = RunOptions(system_prompt=system_prompt, thinking=thinking, chunk_size=chunk_size,
                          progress=not no_progress)
        results = []
        for bench, samples in loaded:
            if responses is not None:
                gen: Any = rf.for_samples(bench.name, samples)
            else:
                if backend is None:
                    from verifier.factory import build_backend

                    kw: dict[str, Any] = {"seed": seed}
                    if spec.startswith("transformers:"):
                        kw.update(batch_size=batch_size, chat_template=template_text)
                    elif spec.startswith("openai:"):
                        kw.update(concurrency=concurrency)
                    backend = build_backend(spec, base_url=base_url, **kw)
                gen = BackendGenerator(backend, GenerationConfig(max_tokens=max_tokens, temperature=temperature,
                                                                 top_p=top_p))
            results.append(run_benchmark(bench, samples, gen, scorers, out, opts))
        judge = None if no_llm else {
            "verifier": verifier_spec, "base_url": list(verifier_url or []), "mode": judge_mode,
            "template": scorers.judged.verifier.template.name if scorers.used else judge_template,
            "used": scorers.used}
        summary = build_summary(results, model=spec, generation=generation, judge=judge,
                                data_sha256={b.name: samples_sha256(samples) for b, samples in loaded})
        table = write_outputs(out, summary)
        from benchmarks.html_report import write_report

        write_report([out], out / "report.html")
    except (BenchmarkError, OSError, ValueError) as e:
        raise _fail(str(e)) from None
    finally:
        scorers.close()
        if backend is not None:
            backend.close()
    typer.echo(table)
    typer.echo(f"wrote {out}/summary.json, summary.md, per_type.png, report.html, samples/", err=True)
    sys.stdout.flush()


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
    app.command("compare")(compare_cmd)
    app.command("report")(report_cmd)
