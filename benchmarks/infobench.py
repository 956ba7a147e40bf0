"""InFoBench (Qin et al., 2024): DRFR, the share of decomposed yes/no requirements a response satisfies.

Rows (Hub ``kqsong/InFoBench``, 500 instructions, 2,250 questions; or a local copy): ``id``, ``instruction``,
``input`` (may be empty), ``category``, ``subset`` (``Easy_set`` / ``Hard_set``), ``decomposed_questions``
(list of yes/no questions) and ``question_label`` (per question, its requirement types).

The authors ship ``InfoBench.json`` as JSON Lines under a ``.json`` name (the Hub serves the same file): it loads
as it is. ``--responses`` reads the authors' output files (the data rows plus an ``output`` field, matched by ``id``).

The model is asked the instruction, followed by the input on its own paragraph when there is one. Each
decomposed question becomes one soft constraint that the LLM verifier answers YES/NO with the authors' judge
prompt (``judge_template = "infobench"``, :data:`verifier.prompts.INFOBENCH_SYS_MSG`): their rubric, then
``Input:`` (left out when there is none), ``Generated Text:`` and ``Question:``, as ``evaluation.py`` builds its
first message. Like theirs, the judge sees the input, not the instruction (the instance's ``prompt`` is the input).
Remaining departures from their judge: they asked an instance's questions one after another in one conversation
(each later message only the question), where each question here is judged on its own message (batched and
cached like every soft constraint); their reply rule is "starts with yes/no, else YES xor NO appears", this
project's is :func:`verifier.parsing.parse_verdict`'s; an answer the verifier cannot read is undecided here, where
their loop stopped the instance. ``--judge-template en`` gives the project's generic template instead.

``-b infobench_conversation`` judges as the authors did, one conversation per instance
(:class:`InFoBenchConversation`): the first question inside the full first message, each later question alone after
the judge's earlier replies, replies read by their rule (:func:`verifier.prompts.infobench_answer`), and an
unreadable reply ends the instance (its remaining questions stay undecided: the authors leave them out of the
total, here they count in it and are reported). The verdicts are stored as the turn's
``extra["infobench_eval"]``, with the judge's replies.

Metrics: ``drfr`` = questions answered yes / all questions, and the same over the ``Easy_set`` and ``Hard_set``
instructions (``drfr_easy``, ``drfr_hard``). Undecided answers count in the total, not as yes, and are
reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from benchmarks.base import Benchmark, BenchmarkError, Record, Sample, Turn, Value, verdicts
from verinstruct.schema import Constraint, Instance, LLMCheck

#: the card spells them Easy_Set / Hard_Set, the data Easy_set / Hard_set: compared case-insensitively
SUBSETS = {"easy_set": "easy", "hard_set": "hard"}


def prompt_of(instruction: str, input_text: str) -> str:
    return f"{instruction}\n\n{input_text}" if input_text.strip() else instruction


class InFoBench(Benchmark):
    name = "infobench"
    hub_id = "kqsong/InFoBench"
    hub_split = "train"
    modes: ClassVar[tuple[str, ...]] = ("strict",)
    headline: ClassVar[tuple[str, ...]] = ("drfr", "drfr_easy", "drfr_hard")
    needs_verifier: ClassVar[bool] = True
    judge_template: ClassVar[str | None] = "infobench"
    version = "2"  # 2: the authors' judge prompt
    aggregations: ClassVar[Mapping[str, str]] = {
        "drfr": "decomposed questions answered YES / all questions, pooled over instructions (DRFR)",
        "drfr_easy": "DRFR over the Easy_set instructions", "drfr_hard": "DRFR over the Hard_set instructions"}

    def to_sample(self, row: Mapping[str, Any], where: str) -> Sample:
        rid = row.get("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid).strip() == "":
            raise BenchmarkError(f"{where}: field 'id' must be a non-empty string or integer, got {rid!r}")
        where = f"{where} (id {str(rid)!r})"
        instruction = _str(row, "instruction", where, allow_empty=False)
        input_text = _str(row, "input", where) if row.get("input") is not None else ""
        questions = row.get("decomposed_questions")
        if not isinstance(questions, Sequence) or isinstance(questions, str) or not questions:
            raise BenchmarkError(f"{where}: field 'decomposed_questions' must be a non-empty list of strings")
        labels = row.get("question_label")
        if labels is not None and (not isinstance(labels, Sequence) or len(labels) != len(questions)):
            raise BenchmarkError(f"{where}: field 'question_label' must have one entry per decomposed question "
                                 f"({len(questions)}), got {labels!r}"[:300])
        subset = row.get("subset")
        if subset is not None and (not isinstance(subset, str) or subset.lower() not in SUBSETS):
            raise BenchmarkError(f"{where}: field 'subset' must be Easy_set or Hard_set, got {subset!r}")
        constraints = []
        for k, q in enumerate(questions):
            if not isinstance(q, str) or not q.strip():
                raise BenchmarkError(f"{where}: field 'decomposed_questions[{k}]' must be a non-empty string, got {q!r}")
            constraints.append(Constraint(f"infobench:{_label(labels[k] if labels is not None else None)}", "soft",
                                          q, LLMCheck(), None, "given"))
        prompt = prompt_of(instruction, input_text)
        meta = {"subset": subset, "category": row.get("category")}
        # the judge sees what the authors' judge saw of the task: the input only
        inst = Instance(str(rid), input_text, tuple(constraints), None, {"format": "infobench", "extra": meta})
        return Sample.single(str(rid), prompt, inst, meta=meta)

    def record_contributions(self, record: Record) -> Iterable[tuple[str, Value]]:
        subset = SUBSETS.get((record["meta"].get("subset") or "").lower())
        for v in verdicts(record, 0, "strict"):
            yield "drfr", v
            if subset:
                yield f"drfr_{subset}", v


EVAL = "infobench_eval"


class InFoBenchConversation(InFoBench):
    """InFoBench judged the authors' way: all questions of an instance in one conversation (module docstring)."""

    name = "infobench_conversation"

    def to_sample(self, row: Mapping[str, Any], where: str) -> Sample:
        """The same sample, its questions kept in the instance's source instead of as soft constraints (so the
        generic judge does not also answer them one by one)."""
        s = super().to_sample(row, where)
        inst = s.turns[0].instance
        assert inst is not None
        extra = {**inst.source["extra"], "questions": [c.text for c in inst.constraints],
                 "labels": [c.name for c in inst.constraints]}
        conv = Instance(inst.id, inst.prompt, (), None, {"format": "infobench", "extra": extra})
        return Sample(s.id, (Turn(s.turns[0].messages, conv),), s.system, {**s.meta, "labels": extra["labels"]})

    def extra_scores(self, get_scorer: Callable[[bool], Any], instances: Sequence[Instance],
                     texts: Sequence[str]) -> list[dict[str, Any]] | None:
        from verifier.prompts import infobench_answer, infobench_conversation

        verifier = getattr(get_scorer(True), "verifier", None)
        qs = [list(inst.source["extra"]["questions"]) for inst in instances]
        inputs = [inst.prompt for inst in instances]
        replies: list[list[str]] = [[] for _ in instances]
        evals: list[list[bool | None]] = [[] for _ in instances]
        notes: list[str | None] = [None] * len(instances)
        if verifier is None:
            notes = ["no judge (--no-llm)"] * len(instances)
        for k in range(max((len(q) for q in qs), default=0)):
            active = [i for i in range(len(instances)) if notes[i] is None and k < len(qs[i])]
            if not active:
                break
            results = verifier.complete_batch(
                [infobench_conversation(inputs[i], texts[i], qs[i], replies[i]) for i in active])
            for i, res in zip(active, results, strict=True):
                if res.text is None:
                    notes[i] = f"judge failed at question {k + 1}: {res.error}"
                    continue
                replies[i].append(res.text)
                answer = infobench_answer(res.text)
                evals[i].append(answer)
                if answer is None:
                    notes[i] = f"unreadable reply to question {k + 1}; the rest were not asked (as the authors do)"
        out = []
        for i in range(len(instances)):
            padded = evals[i] + [None] * (len(qs[i]) - len(evals[i]))
            out.append({EVAL: padded, "judge_replies": replies[i], "note": notes[i]})
        return out

    def _eval(self, record: Record) -> list[bool | None]:
        extra = record["turns"][0].get("extra") or {}
        if EVAL in extra:
            return list(extra[EVAL])
        # a turn whose generation failed: every question undecided
        return [None] * len(record["meta"].get("labels") or ())

    def record_contributions(self, record: Record) -> Iterable[tuple[str, Value]]:
        subset = SUBSETS.get((record["meta"].get("subset") or "").lower())
        for v in self._eval(record):
            yield "drfr", v
            if subset:
                yield f"drfr_{subset}", v

    def type_contributions(self, records: Sequence[Record]) -> Iterable[tuple[str, Value]]:
        for r in records:
            yield from zip(r["meta"].get("labels") or (), self._eval(r), strict=False)


def _label(label: Any) -> str:
    """A question's requirement types as one name ('content', 'format/number', ...), for per-type reports."""
    if isinstance(label, str):
        parts = [label]
    elif isinstance(label, Sequence):
        parts = [str(x) for x in label]
    else:
        parts = []
    parts = [p.strip().lower() for p in parts if str(p).strip()]
    return "/".join(parts) or "question"


def _str(row: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = True) -> str:
    v = row.get(key)
    if not isinstance(v, str) or (not allow_empty and not v.strip()):
        raise BenchmarkError(f"{where}: field {key!r} must be a {'non-empty ' if not allow_empty else ''}string, "
                             f"got {v!r}"[:300])
    return v


BENCHMARK = InFoBench()
CONVERSATION = InFoBenchConversation()
