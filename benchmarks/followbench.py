"""FollowBench (Jiang et al., ACL 2024): multi-level constraints, HSR / SSR per level, CSL, per category.

Data: the six ``{content,situation,style,format,example,mixed}_constraints.json`` files of the authors'
repository (a folder or one file via ``--data``; rows ``example_id, category, source, level, instruction,
target``), or the Hub copy ``YuxinJiang/FollowBench``. Level 0 is the original instruction; level n adds n
constraints. Only levels 1-5 are generated and scored, as the authors do.

Scoring follows the authors' split:

* rule-scored rows (13 sources, format examples 22 and 30, every ``example`` row) get ONE hard registry
  constraint (:mod:`checkers.followbench`) deciding the whole level, as the authors' function does;
* every other row gets n soft constraints, one per added constraint, judged by the LLM verifier. Each one's
  text carries the constraint-evolution path (the instructions of levels 0..n), as the authors' judge sees
  it, and names which step's constraint to judge: the authors ask for all n verdicts in one reply, this
  project's verifier answers one constraint per call.

Metrics (the authors' definitions): for an instruction of level n, hard satisfaction is "every constraint
satisfied" and soft satisfaction the fraction satisfied (a rule row is 1 or 0 for both). ``hsr_level_n`` /
``ssr_level_n`` average them over instructions; ``csl`` is, per example with all five levels, the number of
consecutive levels satisfied from level 1, averaged (its ``rate`` is that mean, 0-5). Every metric is also
given per category (``content/hsr_level_1``, ...), which is how the authors report them. The overall numbers
pool all instructions of all categories (so ``example``, 200 rows, weighs twice ``mixed``, 102): their
``metric_info`` says so. An undecided verdict makes that instruction's hard/soft value undecided (counted,
reported, not credited). The rule checkers decide whitespace-only responses themselves, as the authors' do.
The LLM-judged rows are asked one constraint per call with the project's judge template (batched, cached, any
judge mode); ``-b followbench_authors_judge`` asks them as the authors do instead (:class:`FollowBenchAuthorsJudge`):
one call per instruction with their prompt (:func:`verifier.prompts.followbench_judge_prompt`) and their reading of
the reply's last-line list (:func:`verifier.prompts.followbench_verdicts`); a reply their code cannot read (it counts
-1 and asks for a manual fix) is undecided here. Its verdicts are stored as the turn's ``extra["followbench_judge"]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.base import (
    Benchmark,
    BenchmarkError,
    MetricInfo,
    Record,
    Sample,
    Turn,
    Value,
    all_passed,
    read_local,
    verdicts,
)
from checkers.followbench import EXAMPLE_ID, FORMAT_EXAMPLES, FORMAT_ID, RULE_SOURCES
from verinstruct.schema import Constraint, Instance, LLMCheck, SchemaError, make_registry_check

CATEGORIES: tuple[str, ...] = ("content", "situation", "style", "format", "example", "mixed")
LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
#: how the authors' judge prompt names the added constraints of each category
_KIND = {"content": "content ", "situation": "situation (information describing a specific situation or "
         "background) ", "style": "style ", "format": "format ", "mixed": ""}
#: the row field that says which file a row came from when it is not the row's own ``category``
FILE_FIELD = "file_category"


def _label(n: int) -> str:
    if n == 0:
        return "#Initial Instruction#"
    return f"#Initial Instruction + {n} constraint{'s' if n > 1 else ''}#"


def evolution_text(path: Sequence[str], i: int, kind: str = "") -> str:
    """The text of constraint ``i`` (1-based) of the last instruction in ``path`` (levels 0..n)."""
    n = len(path) - 1
    steps = "\n\n".join(f"{_label(k)}\n{instr}" for k, instr in enumerate(path))
    return (
        f"An initial instruction was extended by adding one {kind}constraint at a time, giving the final "
        f"instruction with {n} added constraint{'s' if n > 1 else ''}:\n\n{steps}\n\n"
        f"Judge only the constraint added from {_label(i - 1)} to {_label(i)}: does the text satisfy it?"
    )


class FollowBench(Benchmark):
    name = "followbench"
    hub_id = "YuxinJiang/FollowBench"
    hub_split = "train"
    modes: ClassVar[tuple[str, ...]] = ("strict",)
    mean_metrics: ClassVar[tuple[str, ...]] = ("csl",)
    headline: ClassVar[tuple[str, ...]] = (
        *(f"hsr_level_{n}" for n in LEVELS), *(f"ssr_level_{n}" for n in LEVELS), "csl", "hsr", "ssr")
    needs_verifier: ClassVar[bool] = True
    aggregations: ClassVar[Mapping[str, str]] = {
        **{f"hsr_level_{n}": f"level-{n} instructions with every constraint satisfied / level-{n} instructions"
           for n in LEVELS},
        **{f"ssr_level_{n}": f"mean over level-{n} instructions of the share of constraints satisfied" for n in LEVELS},
        "hsr": "instructions of levels 1-5 with every constraint satisfied / instructions",
        "ssr": "mean over instructions of levels 1-5 of the share of constraints satisfied",
        "csl": "mean over examples with all five levels of the consecutive levels satisfied from level 1 (0-5)",
    }

    def metric_info(self, metric: str) -> MetricInfo:
        """Pooled numbers (no ``CATEGORY/``) say so: they weight each category by its number of rows (the authors' ``example``
        file has 200, ``mixed`` 102), where the authors report per category only."""
        info = super().metric_info(metric)
        if "/" in metric:
            return MetricInfo(f"{metric.split('/', 1)[0]} category: {info.aggregation}", info.unit,
                              info.higher_is_better)
        return MetricInfo(f"POOLED over all categories, each weighted by its number of rows (the authors report "
                          f"per category only: see CATEGORY/{metric}): {info.aggregation}", info.unit,
                          info.higher_is_better)

    # ---- load ----------------------------------------------------------------------------------
    def read_rows(self, path: Path) -> list[dict[str, Any]]:
        """A folder holding the six ``*_constraints.json`` files, or one of them; rows remember their file."""
        if path.is_dir():
            files = [path / f"{c}_constraints.json" for c in CATEGORIES if (path / f"{c}_constraints.json").is_file()]
            if not files:
                raise BenchmarkError(f"benchmark 'followbench': no *_constraints.json files in {str(path)!r}")
        else:
            files = [path]
        out = []
        for f in files:
            cat = f.name.removesuffix("_constraints.json")
            for r in read_local(self.name, f):
                out.append({**r, FILE_FIELD: cat} if cat in CATEGORIES else r)
        return out

    # ---- convert -------------------------------------------------------------------------------
    def to_samples(self, rows: Sequence[Mapping[str, Any]]) -> list[Sample]:
        groups: dict[tuple[str, int], dict[int, tuple[Mapping[str, Any], str]]] = {}
        order: list[tuple[str, int, int]] = []
        last_zero: tuple[int, str] | None = None  # (example_id, category) of the last level-0 row
        for i, r in enumerate(rows):
            where = f"followbench row {i + 1}"
            if not isinstance(r, Mapping):
                raise BenchmarkError(f"{where}: expected an object, got {type(r).__name__}")
            eid, level = _field(r, "example_id", int, where), _field(r, "level", int, where)
            _field(r, "instruction", str, where)
            if level not in (0, *LEVELS):
                raise BenchmarkError(f"{where}: field 'level' must be 0-5, got {level!r}")
            cat = r.get(FILE_FIELD)
            if cat is None:
                # Hub rows carry no file name and a mixed row's category lists its constraint types
                # ("format", "format, content", ...): a row belongs to the level-0 row just before it with
                # the same example_id ("mixed" for those); example rows have no level 0.
                cat = _field(r, "category", str, where)
                if level and cat != "example" and last_zero is not None and last_zero[0] == eid:
                    cat = last_zero[1]
            if cat not in CATEGORIES:
                raise BenchmarkError(f"{where}: field 'category' must be one of {', '.join(CATEGORIES)} "
                                     f"(or follow its level-0 row), got {r.get('category')!r}")
            if level == 0:
                last_zero = (eid, cat)
            levels = groups.setdefault((cat, eid), {})
            if level in levels:
                raise BenchmarkError(f"{where}: duplicate row for {cat} example {eid} level {level}")
            levels[level] = (r, where)
            if level:
                order.append((cat, eid, level))
        return [self._sample(cat, eid, level, groups[(cat, eid)]) for cat, eid, level in order]

    def _sample(self, cat: str, eid: int, level: int,
                levels: Mapping[int, tuple[Mapping[str, Any], str]]) -> Sample:
        row, where = levels[level]
        sid = f"{cat}:{eid}:{level}"
        source = str(row.get("source", ""))
        judge = "rule" if (cat == "example" or source in RULE_SOURCES
                           or (cat == "format" and eid in FORMAT_EXAMPLES)) else "llm"
        if judge == "rule":
            constraints = (self._rule_constraint(cat, eid, level, row, where),)
        else:
            missing = [k for k in range(level) if k not in levels]
            if missing:
                raise BenchmarkError(f"{where}: {cat} example {eid} level {level} is judged with its evolution "
                                     f"path but level {missing[0]} of that example is missing")
            path = [levels[k][0]["instruction"] for k in range(level + 1)]
            kinds = _mixed_kinds(row) if cat == "mixed" else []
            constraints = tuple(
                Constraint(f"followbench:{cat}", "soft",
                           evolution_text(path, i, f"{kinds[i - 1]} " if len(kinds) >= i else _KIND[cat]),
                           LLMCheck(), None, "given")
                for i in range(1, level + 1))
        inst = Instance(sid, row["instruction"], constraints, None,
                        {"format": "followbench", "extra": {"category": cat, "example_id": eid, "level": level,
                                                            "source": source}})
        meta = {"category": cat, "example_id": eid, "level": level, "source": source, "judge": judge}
        return Sample.single(sid, row["instruction"], inst, meta=meta)

    @staticmethod
    def _rule_constraint(cat: str, eid: int, level: int, row: Mapping[str, Any], where: str) -> Constraint:
        target = row.get("target")
        if not isinstance(target, str):
            raise BenchmarkError(f"{where}: field 'target' must be a string, got {type(target).__name__}")
        if cat == "example":
            checker, params = EXAMPLE_ID, {"template": target.replace("{instruction}\n", "")}
        elif cat == "format" and eid in FORMAT_EXAMPLES:
            checker, params = FORMAT_ID, {"example_id": eid, "level": level}
        else:
            checker, params = RULE_SOURCES[row["source"]], {"target": target, "level": level}
        try:
            check = make_registry_check(checker, params, where, "target")
        except SchemaError as e:
            raise BenchmarkError(str(e)) from None
        return Constraint(checker, "hard", f"FollowBench rule {checker} at level {level}", check, None, "given")

    # ---- measure -------------------------------------------------------------------------------
    def row_verdicts(self, record: Record) -> list[bool | None]:
        """The verdicts of one instruction's added constraints (a rule row: its one verdict)."""
        return verdicts(record, 0, "strict")

    def contributions(self, records: Sequence[Record]) -> Iterable[tuple[str, Value]]:
        hard_by_example: dict[tuple[str, Any], dict[int, bool | None]] = {}
        for r in records:
            cat, level = r["meta"]["category"], r["meta"]["level"]
            vs = self.row_verdicts(r)
            hard = all_passed(vs)
            soft = None if not vs or any(v is None for v in vs) else sum(vs) / len(vs)
            for prefix in ("", f"{cat}/"):
                yield f"{prefix}hsr_level_{level}", hard
                yield f"{prefix}ssr_level_{level}", soft
                yield f"{prefix}hsr", hard
                yield f"{prefix}ssr", soft
            hard_by_example.setdefault((cat, r["meta"]["example_id"]), {})[level] = hard
        for (cat, _), by_level in sorted(hard_by_example.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            if set(by_level) != set(LEVELS):
                continue  # CSL needs all five levels of an example (e.g. not under --limit)
            csl = consecutive_levels([by_level[n] for n in LEVELS])
            yield "csl", csl
            yield f"{cat}/csl", csl


JUDGE = "followbench_judge"


class FollowBenchAuthorsJudge(FollowBench):
    """FollowBench with the authors' judge protocol for its LLM-judged rows (module docstring)."""

    name = "followbench_authors_judge"

    def _sample(self, cat: str, eid: int, level: int,
                levels: Mapping[int, tuple[Mapping[str, Any], str]]) -> Sample:
        s = super()._sample(cat, eid, level, levels)
        if s.meta["judge"] != "llm":
            return s
        inst = s.turns[0].instance
        assert inst is not None
        extra = {**inst.source["extra"], "path": [levels[k][0]["instruction"] for k in range(level + 1)]}
        judged = Instance(inst.id, inst.prompt, (), None, {"format": "followbench", "extra": extra})
        return Sample(s.id, (Turn(s.turns[0].messages, judged),), s.system, s.meta)

    def extra_scores(self, get_scorer: Callable[[bool], Any], instances: Sequence[Instance],
                     texts: Sequence[str]) -> list[dict[str, Any]] | None:
        from verifier.prompts import followbench_judge_prompt, followbench_verdicts

        todo = [i for i, inst in enumerate(instances) if "path" in inst.source["extra"]]
        if not todo:
            return None
        verifier = getattr(get_scorer(True), "verifier", None)
        out: list[dict[str, Any]] = [{} for _ in instances]
        results = verifier.complete_batch([[{"role": "user", "content": followbench_judge_prompt(
            instances[i].source["extra"]["category"], instances[i].source["extra"]["path"], texts[i])}]
            for i in todo]) if verifier is not None else [None] * len(todo)
        for i, res in zip(todo, results, strict=True):
            level = instances[i].source["extra"]["level"]
            if res is None or res.text is None:
                note = "no judge (--no-llm)" if res is None else f"judge failed: {res.error}"
                out[i] = {JUDGE: {"verdicts": [None] * level, "reply": None, "note": note}}
                continue
            vs = followbench_verdicts(res.text, level)
            out[i] = {JUDGE: {"verdicts": [None] * level if vs is None else vs, "reply": res.text,
                              "note": None if vs is not None else "reply not readable by the authors' rule"}}
        return out

    def row_verdicts(self, record: Record) -> list[bool | None]:
        extra = record["turns"][0].get("extra") or {}
        if JUDGE in extra:
            return list(extra[JUDGE]["verdicts"])
        if record["meta"]["judge"] == "llm":  # generation failed: every added constraint undecided
            return [None] * record["meta"]["level"]
        return verdicts(record, 0, "strict")

    def type_contributions(self, records: Sequence[Record]) -> Iterable[tuple[str, Value]]:
        for r in records:
            if r["meta"]["judge"] == "llm":
                for v in self.row_verdicts(r):
                    yield f"followbench:{r['meta']['category']}", v
            else:
                yield from super().type_contributions([r])


def consecutive_levels(hard: Sequence[bool | None]) -> int | None:
    """Levels satisfied in a row from level 1; None when an undecided level comes before the first failure."""
    count = 0
    for v in hard:
        if v is None:
            return None
        if not v:
            break
        count += 1
    return count


def _mixed_kinds(row: Mapping[str, Any]) -> list[str]:
    cat = row.get("category")
    if not isinstance(cat, str):
        return []
    kinds = [k.strip() for k in cat.split(",")]
    return kinds if all(k in _KIND for k in kinds) else []


def _field(row: Mapping[str, Any], key: str, typ: type, where: str) -> Any:
    v = row.get(key)
    if typ is int and isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if not isinstance(v, typ) or isinstance(v, bool):
        raise BenchmarkError(f"{where}: field {key!r} must be {'an integer' if typ is int else 'a string'}, "
                             f"got {json.dumps(v)[:60] if v is not None else 'nothing'}")
    return v


BENCHMARK = FollowBench()
AUTHORS_JUDGE = FollowBenchAuthorsJudge()
