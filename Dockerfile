# The VerIF reward service (`verif rl serve`): dataset code runs here, on CPU machines, not on the GPU nodes.
# Build and run: see docs/reward_service.md. Summary:
#   docker build -t verinstruct-reward .
#   docker network create --internal verif-net        # reaches the verifier, nothing else
#   docker run --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
#     --network verif-net -v verif-cache:/cache -p 8100:8100 -e VERIF_REWARD_API_KEY=... \
#     verinstruct-reward --verifier openai:IF-Verifier-7B --base-url http://verifier:8000/v1
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/verinstruct
COPY pyproject.toml constraints.txt README.md ./
COPY checkers ./checkers
COPY verifier ./verifier
COPY verinstruct ./verinstruct
COPY rl ./rl
COPY benchmarks ./benchmarks
# The base install only: the service needs no torch, verl or GPU (the verifier is reached over HTTP).
RUN pip install -c constraints.txt . \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /cache --shell /usr/sbin/nologin verif \
 && mkdir -p /cache && chown verif:verif /cache

# The only writable place (with a tmpfs /tmp): the judge cache, kept across restarts on a volume.
ENV HOME=/cache XDG_CACHE_HOME=/cache VERIF_REWARD_CACHE=/cache/judgements.sqlite
VOLUME ["/cache"]
USER 10001:10001
EXPOSE 8100
HEALTHCHECK --interval=30s --timeout=5s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8100/health', timeout=4)"]
# Closed by default: listening on 0.0.0.0 needs VERIF_REWARD_API_KEY (the command refuses to start without it).
ENTRYPOINT ["verif", "rl", "serve", "--host", "0.0.0.0", "--port", "8100"]
CMD ["--verifier", "none"]
