"""Compiled dataset code (stdlib only): compiled once per source in the scheduler (LRU by source hash) and
shipped to the call's process marshalled, so no process that runs dataset code compiles untrusted text."""

from __future__ import annotations

import binascii
import marshal
from collections import OrderedDict
from typing import Any

if __package__:
    from . import protocol
else:  # loaded flat by BOOT, without importing the checkers package
    import protocol  # type: ignore[no-redef]

CODE_CACHE_SIZE = 4096


class CodeCache:
    """Code objects by source hash; a source that does not compile caches its error string instead."""

    def __init__(self, size: int = CODE_CACHE_SIZE) -> None:
        self.size = size
        self.codes: OrderedDict[str, Any] = OrderedDict()
        self.marshalled: dict[str, tuple[Any, str]] = {}  # hash -> (code object, its shipped form), made once

    def get(self, h: str, source: str | None, max_chars: int) -> tuple[Any, str | None]:
        """(code object, None) or (None, error)."""
        if h in self.codes:
            self.codes.move_to_end(h)
            code = self.codes[h]
        elif source is None:
            return None, f"{protocol.ERR_SANDBOX}: source {h[:12]} not sent"
        elif len(source) > max_chars:
            return None, f"{protocol.ERR_SOURCE_TOO_LARGE}: {len(source)} characters > {max_chars}"
        else:
            code = compile_source(source)
            self.codes[h] = code
            if len(self.codes) > self.size:
                old, _ = self.codes.popitem(last=False)
                self.marshalled.pop(old, None)
        return (None, code) if isinstance(code, str) else (code, None)


    def shipped(self, h: str, code: Any) -> str:
        """The shipped form of ``code`` (source hash ``h``), made once while the code is cached (a kept row's
        process may be re-run after its code left the cache: then it is made again)."""
        got = self.marshalled.get(h)
        if got is None or got[0] is not code:
            got = (code, ship(code))
            if self.codes.get(h) is code:
                self.marshalled[h] = got
        return got[1]


def compile_source(source: str) -> Any:
    """The code object, or the error string when it does not compile."""
    try:
        return compile(source, "<dataset code>", "exec", dont_inherit=True)
    except SyntaxError as e:
        return f"{protocol.ERR_SYNTAX}: {e.msg} (line {e.lineno})"
    except (ValueError, RecursionError, MemoryError, OverflowError) as e:
        return f"{protocol.ERR_SYNTAX}: {type(e).__name__}: {str(e)[:200]}"


def ship(code: Any) -> str:
    return binascii.b2a_base64(marshal.dumps(code), newline=False).decode("ascii")


def unship(data: str) -> Any:
    return marshal.loads(binascii.a2b_base64(data))
