# The operator image the Helm chart runs (`reconciler operator ...`); the CLI is in it too.
# Built by release CI; it cannot be built on the development machines (no container engine),
# so it is kept minimal: the package and its dependencies from PyPI, nothing else.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
RUN pip install . && rm -rf /src
# The chart runs as this user with a read-only root filesystem and a writable /tmp.
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["reconciler"]
CMD ["operator", "--all-namespaces"]
