"""Default guards of ``verif serve`` (see :mod:`verifier.server`), in a module without web imports so the
CLI can show them before it loads FastAPI."""

#: largest request body, bytes (413 beyond it)
MAX_BODY_BYTES = 8 * 1024 * 1024
#: requests admitted and not yet answered (503 with Retry-After beyond it)
MAX_QUEUE = 1024
#: largest max_tokens a request may ask for (400 beyond it)
MAX_TOKENS_LIMIT = 4096
#: seconds a client is told to wait when the queue is full
RETRY_AFTER_S = 1
