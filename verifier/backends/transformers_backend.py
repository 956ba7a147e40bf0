"""Hugging Face transformers backend (CPU or GPU): the embedded default judge.

* ``generate``: batched greedy generation with left padding (sampling only when temperature > 0, seeded).
* ``score``: exact sequence log-probability of each candidate answer after the chat template's generation
  prompt, from forward passes only. Candidates sharing a prefix share a row: all single-token candidates
  are read from one forward pass over the prompt.

Quiet: transformers' logging (below errors), its progress bars (e.g. "Loading weights") and Python
warnings are silenced while this backend loads or runs, then restored, so CLI output stays clean.

Deterministic: eval mode, ``torch.inference_mode``, greedy decoding, ``torch.manual_seed`` per call.
A prompt longer than the context window is an error for that item only (the response is not truncated,
since judging a cut response could silently change the verdict); any other failure in a batch is
retried item by item so it stays with the item that caused it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult, TokenLogprob
from verifier.backends.tokens import answer_ids, chat_prompt_ids


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' info/warning logs, its progress bars and Python warnings; restore after."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def quiet_hub() -> Iterator[None]:
    """huggingface_hub logs every retry of an unreachable Hub (a dozen lines before the one error that
    matters); the error itself is raised and reported in one line. Also used for benchmark data."""
    import logging

    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR + 10)
    try:
        yield
    finally:
        hub_log.setLevel(level)


def _first_line(e: BaseException) -> str:
    """The first non-empty line of an error (Hub errors span many lines, the first says what failed)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def _load_hint(path: Path, local_files_only: bool) -> str:
    import os

    if path.exists():
        return ""
    if local_files_only:
        return " (no such local folder, and this model is read from the Hugging Face cache only, not downloaded)"
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return " (no such local folder, and HF_HUB_OFFLINE is set: only models already in the Hugging Face cache load)"
    return " (no such local folder; as a Hub id it could not be downloaded: check the id, the revision, the network or HF_TOKEN)"


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        index = device.partition(":")[2]
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: torch sees no CUDA GPU here (use cpu or auto)")
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ValueError(f"device {device!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps': torch sees no Apple GPU here (use cpu or auto)")
    return device


def _pick_dtype(dtype: Any, device: str) -> Any:
    import torch

    if dtype in (None, "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, str):
        try:
            return {
                "bf16": torch.bfloat16,
                "bfloat16": torch.bfloat16,
                "fp16": torch.float16,
                "float16": torch.float16,
                "fp32": torch.float32,
                "float32": torch.float32,
            }[dtype]
        except KeyError:
            raise ValueError(f"dtype must be auto, bfloat16, float16 or float32, got {dtype!r}") from None
    return dtype


class TransformersBackend:
    """A causal LM loaded with transformers. ``model="default"`` is the embedded SmolLM2-135M-Instruct."""

    kind = "transformers"

    def __init__(
        self,
        model: str = "default",
        *,
        device: str = "auto",
        dtype: Any = "auto",
        batch_size: int = 8,
        local_files_only: bool = True,
        trust_remote_code: bool = False,
        seed: int = 0,
        max_context: int | None = None,
        chat_template: str | None = None,
        revision: str | None = None,
        no_chat_template: bool = False,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = _pick_device(device)
        self.dtype = _pick_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.seed = seed
        if chat_template is not None and no_chat_template:
            raise ValueError("chat_template and no_chat_template exclude each other")
        with quiet_transformers():
            self._load(model, local_files_only, trust_remote_code, max_context, revision)
        if chat_template is not None:  # a Jinja template replacing the tokenizer's own (e.g. for a base model)
            self.tok.chat_template = chat_template
        if no_chat_template:  # a base model: the messages as plain text (verifier.backends.tokens)
            self.tok.chat_template = None
        self._torch = torch

    def _load(
        self,
        model: str,
        local_files_only: bool,
        trust_remote_code: bool,
        max_context: int | None,
        revision: str | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if model in ("default", "", None):
            from verifier.embedded import default_model_id, load_default

            lm, tok, self.source = load_default(dtype=self.dtype)
            self.model = default_model_id()
        else:
            path = Path(model).expanduser()
            where = str(path) if path.exists() else model
            hub = {"local_files_only": local_files_only, "trust_remote_code": trust_remote_code}
            if revision is not None:
                hub["revision"] = revision
            try:
                with quiet_hub():
                    tok = AutoTokenizer.from_pretrained(where, **hub)
                    lm = AutoModelForCausalLM.from_pretrained(where, dtype=self.dtype, **hub)
            except (OSError, ValueError) as e:
                raise OSError(f"cannot load transformers model {model!r}{_load_hint(path, local_files_only)}: "
                              f"{_first_line(e)}") from e
            self.model = model
            self.source = where
        self.lm = lm.to(device=self.device, dtype=self.dtype).eval()
        self.tok = tok
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        cfg_ctx = getattr(lm.config, "max_position_embeddings", None) or getattr(
            tok, "model_max_length", 2048
        )
        self.context = int(max_context or min(int(cfg_ctx), 1_000_000))
        eos = lm.generation_config.eos_token_id if lm.generation_config is not None else None
        eos = eos if eos is not None else tok.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}

    # --- helpers -----------------------------------------------------------------------------

    def encode(self, messages: Messages) -> list[int]:
        """Token ids of the conversation with the generation prompt (plain concatenation without a template)."""
        return chat_prompt_ids(self.tok, messages)

    def _pad(self, rows: list[list[int]], left: bool) -> tuple[Any, Any, Any]:
        torch = self._torch
        width = max(len(r) for r in rows)
        pad = self.tok.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if left:
                ids[i, width - len(r) :] = torch.tensor(r)
                mask[i, width - len(r) :] = 1
            else:
                ids[i, : len(r)] = torch.tensor(r)
                mask[i, : len(r)] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _isolated(self, items: list[Any], run: Any, fail: Any) -> list[Any]:
        """Run a batch; on failure retry one by one so an error stays with its own item."""
        try:
            return run(items)
        except Exception as e:
            if len(items) == 1:
                return [fail(f"{type(e).__name__}: {e}")]
            out: list[Any] = []
            for it in items:
                out.extend(self._isolated([it], run, fail))
            return out

    # --- generate ----------------------------------------------------------------------------

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        with quiet_transformers():
            return self._generate(batch, config)

    def _generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        results: list[GenResult | None] = [None] * len(batch)
        ready: list[tuple[int, list[int]]] = []
        for i, messages in enumerate(batch):
            try:
                ids = self.encode(messages)
            except Exception as e:
                results[i] = GenResult(
                    None, f"cannot build the prompt: {type(e).__name__}: {e}", bad_request=True
                )
                continue
            if len(ids) + config.max_tokens > self.context:
                results[i] = GenResult(
                    None,
                    (
                        f"prompt has {len(ids)} tokens; with max_tokens={config.max_tokens} it exceeds the "
                        f"context window of {self.context} tokens"
                    ),
                    prompt_tokens=len(ids),
                    bad_request=True,
                )
                continue
            ready.append((i, ids))
        ready.sort(key=lambda p: len(p[1]))
        for s in range(0, len(ready), self.batch_size):
            chunk = ready[s : s + self.batch_size]
            outs = self._isolated(
                chunk, lambda c: self._generate_rows(c, config), lambda e: GenResult(None, e)
            )
            for (i, _), r in zip(chunk, outs, strict=True):
                results[i] = r
        return [r if r is not None else GenResult(None, "internal error: no result") for r in results]

    def _generate_rows(self, chunk: list[tuple[int, list[int]]], config: GenerationConfig) -> list[GenResult]:
        import transformers

        torch = self._torch
        ids, mask, _ = self._pad([r for _, r in chunk], left=True)
        want_lp = config.logprobs or config.top_logprobs > 0
        sample = config.temperature > 0
        gen_cfg = transformers.GenerationConfig(
            max_new_tokens=config.max_tokens,
            do_sample=sample,
            temperature=config.temperature if sample else None,
            top_p=config.top_p if sample and config.top_p < 1.0 else None,
            top_k=None,
            pad_token_id=self.tok.pad_token_id,
            eos_token_id=sorted(self.eos_ids) or None,
            return_dict_in_generate=True,
            output_logits=want_lp,
        )
        torch.manual_seed(self.seed)
        with torch.inference_mode():
            out = self.lm.generate(input_ids=ids, attention_mask=mask, generation_config=gen_cfg)
        new = out.sequences[:, ids.shape[1] :].tolist()
        results = []
        for row, (_, prompt) in enumerate(chunk):
            toks: list[int] = []
            finish = "length"
            for t in new[row]:
                if t in self.eos_ids:
                    finish = "stop"
                    break
                toks.append(t)
            logprobs = None
            if want_lp:
                entries = []
                for step, t in enumerate(toks):
                    lp = torch.log_softmax(out.logits[step][row].float(), dim=-1)
                    top: tuple[tuple[str, float], ...] = ()
                    if config.top_logprobs > 0:
                        vals, idx = lp.topk(config.top_logprobs)
                        top = tuple(
                            (self.tok.decode([j]), float(v))
                            for v, j in zip(vals.tolist(), idx.tolist(), strict=True)
                        )
                    entries.append(TokenLogprob(self.tok.decode([t]), float(lp[t]), top))
                logprobs = tuple(entries)
            text = self.tok.decode(toks, skip_special_tokens=True)
            if config.stop:
                cuts = [text.find(s) for s in config.stop if s and s in text]
                if cuts:
                    text, finish = text[: min(cuts)], "stop"
                    if logprobs is not None:
                        kept, length = [], 0
                        for e in logprobs:
                            if length >= len(text):
                                break
                            kept.append(e)
                            length += len(e.token)
                        logprobs = tuple(kept)
            results.append(GenResult(text, None, finish, logprobs, len(prompt), len(toks)))
        return results

    # --- score -------------------------------------------------------------------------------

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        with quiet_transformers():
            return self._score(batch, candidates)

    def _score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        cands = list(dict.fromkeys(candidates))
        cand_ids = [answer_ids(self.tok, c) for c in cands]
        empty = [c for c, ids in zip(cands, cand_ids, strict=True) if not ids]
        if empty:
            bad = ScoreResult(None, f"candidate {empty[0]!r} has no tokens", bad_request=True)
            return [bad] * len(batch)
        longest = max(len(c) for c in cand_ids)
        needed = sorted({t for c in cand_ids for t in c})
        col = {t: j for j, t in enumerate(needed)}
        results: list[ScoreResult | None] = [None] * len(batch)
        # one row per (item, distinct candidate prefix): row = prompt + cand[:-1]
        rows: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        prompts: dict[int, list[int]] = {}
        for i, messages in enumerate(batch):
            try:
                ids = self.encode(messages)
            except Exception as e:
                results[i] = ScoreResult(
                    None, f"cannot build the prompt: {type(e).__name__}: {e}", bad_request=True
                )
                continue
            if len(ids) + longest > self.context:
                results[i] = ScoreResult(
                    None,
                    (
                        f"prompt has {len(ids)} tokens; with the answer it exceeds the context window of "
                        f"{self.context} tokens"
                    ),
                    bad_request=True,
                )
                continue
            prompts[i] = ids
            for c in cand_ids:
                rows.setdefault((i, tuple(c[:-1])), ids + c[:-1])
        order = sorted(rows, key=lambda k: len(rows[k]))
        row_lp: dict[tuple[int, tuple[int, ...]], Any] = {}
        errors: dict[int, str] = {}
        for s in range(0, len(order), self.batch_size):
            chunk = order[s : s + self.batch_size]
            outs = self._isolated(chunk, lambda c: self._score_rows(c, rows, longest, needed), lambda e: e)
            for key, lp in zip(chunk, outs, strict=True):
                if isinstance(lp, str):
                    errors.setdefault(key[0], lp)
                else:
                    row_lp[key] = lp
        for i in prompts:
            if i in errors:
                results[i] = ScoreResult(None, errors[i])
                continue
            out: dict[str, float] = {}
            for c, c_ids in zip(cands, cand_ids, strict=True):
                lp = row_lp[(i, tuple(c_ids[:-1]))]  # [longest, len(needed)] log-probs, last positions
                k = len(c_ids)
                out[c] = float(sum(lp[longest - k + j][col[t]] for j, t in enumerate(c_ids)))
            results[i] = ScoreResult(out, None, "sequence")
        return [r if r is not None else ScoreResult(None, "internal error: no result") for r in results]

    def _score_rows(
        self, chunk: list[Any], rows: dict[Any, list[int]], keep: int, needed: list[int]
    ) -> list[Any]:
        """Log-probs of the ``needed`` tokens at the last ``keep`` positions of each row (left padded)."""
        torch = self._torch
        seqs = [rows[k] for k in chunk]
        # rows shorter than `keep` positions cannot happen: every row holds at least the prompt
        ids, mask, pos = self._pad(seqs, left=True)
        with torch.inference_mode():
            try:
                logits = self.lm(
                    input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep
                ).logits
            except TypeError:
                logits = self.lm(input_ids=ids, attention_mask=mask, position_ids=pos).logits
            logits = logits[:, -keep:, :].float()
            lp = torch.log_softmax(logits, dim=-1)[:, :, needed].cpu()
        return [lp[r] for r in range(len(chunk))]

    def close(self) -> None:
        self.lm = None
        try:
            if self._torch.cuda.is_available():
                self._torch.cuda.empty_cache()
        except Exception:
            pass
