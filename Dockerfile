# The auditql image: `docker compose up` runs it (compose.yaml); `bash container/check`
# builds and runs it on a machine without a Docker daemon (buildah, podman).
#
# Base images are pinned by version tag and digest. The digests are those that the
# official images' published records (docker-library/repo-info) gave for these tags on
# the dates below; nothing here could pull them. Whoever bumps a tag refreshes its digest
# in the same commit (`docker buildx imagetools inspect IMAGE:TAG`), and the release
# process re-checks both. container/check passes stand-ins through these two ARGs.
# Python 3.11.16, Debian 12, as of 2026-09-01:
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f
# Node.js 24.18.1 with npm 11, as of 2026-07-30 (build stage only):
ARG NODE_IMAGE=node:24.18.1-bookworm-slim@sha256:235600a8101ab264e117b1768e925532262668dc9b581ef1dd7d96ced463b8e7


# GraphiQL's assets, installed by their pinned step (gql.http.playground.INSTALL_COMMAND):
# package-lock.json pins each package with its integrity hash, .npmrc disables install
# scripts. Only the files gql/http/playground.py serves (its _ASSETS, with each package.json
# for the version check) go on to the runtime image.
FROM ${NODE_IMAGE} AS playground
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /build/gql/http/playground
COPY gql/http/playground/package.json gql/http/playground/package-lock.json gql/http/playground/.npmrc ./
RUN npm ci --no-audit --no-fund \
    && mkdir /served \
    && cp --parents \
        node_modules/react/package.json node_modules/react/umd/react.production.min.js \
        node_modules/react-dom/package.json \
        node_modules/react-dom/umd/react-dom.production.min.js \
        node_modules/graphiql/package.json node_modules/graphiql/graphiql.min.js \
        node_modules/graphiql/graphiql.min.css \
        /served/


# The virtual environment: dependencies from requirements.lock (every package pinned
# with its hashes, wheels only), then the project itself as an editable install of /app,
# so that alembic.ini and alembic/ sit next to the code as in the repository
# (persistence/migrations.py finds alembic.ini beside the packages).
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
COPY container/build-requirements.txt requirements.lock /build/
# uv and the build backend, hash-pinned, in a venv of their own that stays in this stage.
RUN python3 -m venv /opt/build-tools \
    && /opt/build-tools/bin/pip install --quiet --require-hashes --no-deps \
        -r /build/build-requirements.txt \
    && /opt/build-tools/bin/uv venv --quiet --python python3 /opt/venv \
    && /opt/build-tools/bin/uv pip sync --quiet --python /opt/venv/bin/python \
        --require-hashes --no-build /build/requirements.lock
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY alembic/ alembic/
COPY persistence/ persistence/
COPY domain/ domain/
COPY gql/ gql/
# The build backend comes under the hashes of build-requirements.txt (uv verifies them).
# `uv pip check` fails the build if requirements.lock no longer satisfies the project's
# pins (bash container/lock re-locks). The application's own bytecode is compiled here,
# hash-checked rather than timestamp-checked, so it stays valid whatever the copies
# below do to mtimes.
RUN /opt/build-tools/bin/uv pip install --quiet --python /opt/venv/bin/python --no-deps \
        --build-constraints /build/build-requirements.txt --editable . \
    && /opt/build-tools/bin/uv pip check --quiet --python /opt/venv/bin/python \
    && python3 -m compileall -q --invalidation-mode checked-hash alembic persistence domain gql


FROM ${PYTHON_IMAGE} AS runtime
# A numeric, non-root user: orchestrators (Kubernetes runAsNonRoot) can verify a number.
# --no-log-init: no sparse lastlog entry sized by the high uid.
RUN groupadd --gid 10001 auditql \
    && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin auditql
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
COPY --from=playground /served/node_modules/ /app/gql/http/playground/node_modules/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AUDITQL_HOST=0.0.0.0 \
    AUDITQL_PORT=8000 \
    AUDITQL_ENVIRONMENT=production \
    AUDITQL_LOG_FORMAT=json
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# /health answers without touching the database (liveness); no curl in a slim image.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AUDITQL_PORT', '8000') + '/health', timeout=2)"]
# Migrations are a release step (`auditql migrate`, compose's `migrate` service), never
# a side effect of starting a replica. SIGTERM (the default stop signal) drains requests
# for AUDITQL_SHUTDOWN_GRACE_SECONDS, then exits 0.
CMD ["auditql", "serve", "--no-migrate"]
