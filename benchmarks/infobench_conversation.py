"""``-b infobench_conversation``: InFoBench judged as its authors did, one conversation per instance (see
:class:`benchmarks.infobench.InFoBenchConversation`)."""

from benchmarks.infobench import CONVERSATION as BENCHMARK

__all__ = ["BENCHMARK"]
