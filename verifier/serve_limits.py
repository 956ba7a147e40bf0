"""Default guards of ``verif serve`` and ``verif rl serve`` (see :mod:`verifier.http_guard`), in a module
without web imports so the CLIs can show them before they load FastAPI."""

#: largest request body, bytes (413 beyond it)
MAX_BODY_BYTES = 8 * 1024 * 1024
#: requests admitted and not yet answered (503 with Retry-After beyond it)
MAX_QUEUE = 1024
#: largest max_tokens a request may ask for (400 beyond it)
MAX_TOKENS_LIMIT = 4096
#: seconds a client is told to wait when the queue is full
RETRY_AFTER_S = 1
#: seconds a connection has to send its request headers (closed otherwise: slow-loris)
HEADER_TIMEOUT_S = 10.0
#: seconds a request has to send its whole body (408 otherwise)
BODY_TIMEOUT_S = 60.0
#: connections served at once (uvicorn's limit_concurrency: 503 beyond it)
MAX_CONNECTIONS = 512
#: deepest JSON nesting accepted in a body (400 beyond it)
MAX_JSON_DEPTH = 32
