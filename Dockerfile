# ocpi-puller: pulls OCPI objects from roaming partners into Kafka.
#   docker build -t ocpi-puller:0.1.0 .
#   docker run --rm ocpi-puller:0.1.0 pull --help
# The same image serves the sandbox partner: `ocpi-puller sandbox --host 0.0.0.0`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the package and its dependencies in a virtualenv ----------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every dependency ships manylinux wheels for CPython 3.11 (amd64 and arm64), so no compiler is
# installed; should one ever be needed, it belongs in this stage and never in the runtime one.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first, from pyproject.toml alone: a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install --requirement requirements.txt

COPY producer ./producer
COPY sandbox ./sandbox
COPY schemas ./schemas
# Not editable: the runtime stage takes /opt/venv alone. Bytecode is compiled here, unchecked
# (valid whatever the file times), because the runtime root filesystem may be read-only.
RUN pip install --no-deps . \
    && python -m compileall -q --invalidation-mode unchecked-hash /opt/venv/lib \
    && ocpi-puller --help > /dev/null

# --- runtime: the virtualenv on a clean slim base, as a non-root user --------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ocpi-puller" \
      org.opencontainers.image.description="Pulls OCPI objects from roaming partners into Kafka" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric user. A regular
# account, not --system: 10001 lies above SYS_UID_MAX, where useradd --system warns. No lastlog
# entry (--no-log-init): a high uid would make /var/log/lastlog a large sparse file.
RUN groupadd --gid 10001 ocpi \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin --no-log-init ocpi

COPY --from=build /opt/venv /opt/venv

# Healthy defaults for a container: unbuffered logs, no .pyc writes (the root filesystem may be
# read-only), a JSON summary line instead of a table, no progress bar without a terminal, and a
# service name for traces. OTLP export starts only once OTEL_EXPORTER_OTLP_ENDPOINT is set.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONFAULTHANDLER=1 \
    OCPI_PULLER_OUTPUT=json \
    OCPI_PULLER_NO_PROGRESS_BAR=true \
    OTEL_SERVICE_NAME=ocpi-puller

USER 10001:10001
WORKDIR /tmp

# SIGTERM stops a pull cleanly (exit 130) with its checkpoints saved; the same pull id resumes.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ocpi-puller"]
CMD ["--help"]
