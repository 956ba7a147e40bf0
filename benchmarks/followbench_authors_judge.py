"""``-b followbench_authors_judge``: FollowBench with its authors' judge prompt and reply rule for the LLM-judged
rows (see :class:`benchmarks.followbench.FollowBenchAuthorsJudge`)."""

from benchmarks.followbench import AUTHORS_JUDGE as BENCHMARK

__all__ = ["BENCHMARK"]
