"""How many processes dataset code gets, as the user chooses it: ``Scorer(sandbox_process_per=...)``, the RL
reward's ``sandbox_process_per`` option. Both choices give the verdicts worked out by hand for the fixture
rows (``expected`` in tests/fixtures/verinstruct), and a bad value is one clear error naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rl.reward import BatchedReward, RewardOptionError
from verinstruct.convert import from_verif
from verinstruct.scorer import Scorer

FIXTURES = Path(__file__).parent / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"


def test_bad_process_per_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="sandbox_process_per"):
        Scorer(None, sandbox_process_per="sample")
    with pytest.raises(RewardOptionError, match="sandbox_process_per='sample'"):
        BatchedReward(verifier="none", log_batches=False, sandbox_process_per="sample")


@pytest.mark.parametrize("process_per", ["row", "call"])
def test_fixture_rows_get_their_hand_worked_verdicts_either_way(process_per: str) -> None:
    """Each fixture row scored on its own response eight times over (a GRPO group sharing one row process in
    the row mode), with the hand-worked ``expected`` verdicts of its code checks as the oracle."""
    rows = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines()]
    instances, responses, expected = [], [], []
    for r in rows:
        inst = from_verif(r)
        for _ in range(8):
            instances.append(inst)
            responses.append(r["response"])
            expected.append(r["expected"])
    with Scorer(None, sandbox_workers=2, sandbox_process_per=process_per) as scorer:
        scored = scorer.score_batch(instances, responses)
        stats = dict(scorer.sandbox.stats)
    compared = 0
    for s, exp, inst in zip(scored, expected, instances, strict=True):
        for c, e in zip(s.constraints, exp, strict=True):
            if e is not None and c.check_type == "code":
                assert c.verdict.passed == e, (inst.id, c.name, c.verdict)
                compared += 1
    assert compared >= 8 * 20
    code_rows = sum(1 for r in rows if any(c.check_type == "code" for c in from_verif(r).constraints))
    if process_per == "row":  # one process per distinct row, whatever the number of its responses
        assert stats["processes"] == code_rows, stats
    else:
        assert stats["processes"] >= compared, stats


def test_a_row_over_the_frame_limit_is_split_and_an_oversized_call_is_its_own_bad_input(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent's frames to a worker are limited (protocol.MAX_FRAME, lowered here to 1 MiB): a row whose
    calls do not fit one frame is sent in parts, and a call that does not fit alone gets an undecided
    ``bad input`` verdict naming it; the run never raises and every other verdict is the known one."""
    from checkers.sandbox import CodeCall, Sandbox, error_class, protocol

    monkeypatch.setattr(protocol, "MAX_FRAME", 1 << 20)
    src = "def check_following(instruction, response):\n    return response.endswith('!')\n"
    part = "x" * (400 << 10)
    calls = [CodeCall(src, "p", part + end, row="r") for end in ("!", ".", "!", "!")]
    calls.append(CodeCall(src, "p", "y" * (2 << 20) + "!", row="r"))
    calls.append(CodeCall(src, "p", "short!", row="r"))
    with Sandbox(workers=1) as sb:
        got = sb.run(calls)
    assert [v.passed for v in got] == [True, False, True, True, None, True], [v.error for v in got]
    assert error_class(got[4].error) == "bad input" and "item 4" in got[4].error
