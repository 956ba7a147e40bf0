"""`verif rl prepare|train-trl|serve`: data for verl / TRL, and a small TRL GRPO run on CPU.

Registered into the `verif` app through the ``verinstruct.cli`` entry-point group (``pyproject.toml``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

rl_app = typer.Typer(help="Reinforcement learning with the VerIF reward (verl, TRL).", no_args_is_help=True)


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(code=code)


@rl_app.command("prepare")
def prepare_cmd(
    src: Annotated[Path, typer.Argument(help="raw VerIF / typed / IFEval rows (.jsonl/.json/.parquet, or a folder), "
                                             "or VerIF's preprocessed verl Parquet")],
    out: Annotated[Path, typer.Argument(help="output .parquet in verl's RL schema")],
    fmt: Annotated[str | None, typer.Option("--from", help="force the input format: verif, ifeval, typed or verl")] = None,
    data_source: Annotated[str, typer.Option(help="the data_source column")] = "verinstruct",
    split: Annotated[str, typer.Option(help="extra_info.split")] = "train",
    system_prompt: Annotated[str | None, typer.Option(help="a system message to put before each prompt")] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N rows")] = None,
) -> None:
    """Convert instruction-following data to verl's Parquet (data_source, prompt, ability, reward_model, extra_info)."""
    from rl.prepare import prepare
    from verinstruct.dataset import DatasetUnavailableError
    from verinstruct.schema import SchemaError

    if not src.exists():
        raise _fail(f"no such file or folder: {str(src)!r}")
    if limit is not None and limit < 1:
        raise _fail(f"--limit must be a positive number of rows, got {limit}")
    try:
        path, n = prepare(src, out, format=fmt, data_source=data_source, split=split, system_prompt=system_prompt,
                          limit=limit)
    except (SchemaError, DatasetUnavailableError, ValueError) as e:
        raise _fail(str(e)) from None
    typer.echo(f"wrote {n} rows to {path}")


@rl_app.command("train-trl")
def train_trl_cmd(
    data: Annotated[Path, typer.Argument(help="a .parquet from `verif rl prepare`")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o")] = Path("trl-grpo-out"),
    model: Annotated[str | None, typer.Option(help="policy model (HF id or path); default: the embedded SmolLM2")] = None,
    verifier: Annotated[str, typer.Option(help="verifier spec, e.g. openai:MODEL, transformers:default, none")] = "none",
    base_url: Annotated[list[str] | None, typer.Option("--base-url", help="OpenAI-compatible verifier server (repeat)")] = None,
    formula: Annotated[str, typer.Option(help="verif, prob, mean or all")] = "verif",
    undecided: Annotated[str, typer.Option(help="undecided verdicts: fail, drop or mask")] = "fail",
    max_steps: Annotated[int, typer.Option()] = 3,
    num_generations: Annotated[int, typer.Option()] = 2,
    max_completion_length: Annotated[int, typer.Option()] = 32,
    batch_size: Annotated[int, typer.Option(help="per-device batch (a multiple of num_generations)")] = 2,
    learning_rate: Annotated[float, typer.Option()] = 1e-6,
) -> None:
    """A small GRPO run with TRL and the VerIF reward (CPU by default); prints the logged reward parts."""
    from rl.reward import RewardOptionError
    from verinstruct.reward import FORMULAS, UNDECIDED_POLICIES

    if not data.is_file():
        raise _fail(f"no such file: {str(data)!r} (make it with `verif rl prepare`)")
    if data.suffix.lower() != ".parquet":
        raise _fail(f"{str(data)!r} is not a .parquet file: convert it first with `verif rl prepare {data} OUT.parquet`")
    if formula not in FORMULAS:
        raise _fail(f"--formula must be one of {', '.join(FORMULAS)}, got {formula!r}")
    if undecided not in UNDECIDED_POLICIES:
        raise _fail(f"--undecided must be one of {', '.join(UNDECIDED_POLICIES)}, got {undecided!r}")
    for name, value in (("--max-steps", max_steps), ("--num-generations", num_generations),
                        ("--max-completion-length", max_completion_length), ("--batch-size", batch_size)):
        if value < 1:
            raise _fail(f"{name} must be >= 1, got {value}")
    if num_generations < 2:
        raise _fail(f"--num-generations must be >= 2 (GRPO compares a prompt's generations), got {num_generations}")
    if batch_size % num_generations:
        raise _fail(f"--batch-size ({batch_size}) must be a multiple of --num-generations ({num_generations})")
    if model is not None and model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().exists():
        raise _fail(f"--model {model!r}: no such folder")
    options = {"verifier": verifier, "formula": formula, "undecided": undecided}
    if base_url:
        options["base_url"] = list(base_url)
    try:
        from rl.trl import train

        trainer = train(str(data), model, str(output_dir), max_steps=max_steps, num_generations=num_generations,
                        max_completion_length=max_completion_length, batch_size=batch_size,
                        learning_rate=learning_rate, reward_options=options)
    except RewardOptionError as e:
        raise _fail(str(e)) from None
    except (OSError, ValueError) as e:  # an unloadable model or dataset: one line, not a traceback
        raise _fail(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    for entry in trainer.state.log_history:
        typer.echo(json.dumps({k: v for k, v in entry.items() if "reward" in k or k.startswith("verinstruct/")
                               or k == "step"}))


from rl.service_cli import serve_cmd  # noqa: E402

rl_app.command("serve")(serve_cmd)


def register(app: typer.Typer) -> None:
    """Entry point of the ``verinstruct.cli`` group: adds ``verif rl``."""
    app.add_typer(rl_app, name="rl")
