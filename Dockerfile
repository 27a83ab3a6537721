# syntax=docker/dockerfile:1
#
# Production image: gunicorn by default; docker-compose.yml runs the same image as
# the Celery worker, Celery beat and the one-shot migration.
#
#   docker build -t webmail .
#
# Secrets (DJANGO_SECRET_KEY, WEBMAIL_CREDENTIAL_KEYS, ...) come from the runtime
# environment only; none is baked into the image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the locked dependencies, installed with uv ----------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON=python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# uv from PyPI, pinned to the version that wrote uv.lock.
RUN pip install "uv==0.13.9"

WORKDIR /app
# Only the lock files: this layer is rebuilt when the dependencies change, not the code.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# --- runtime ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV WEBMAIL_ENV=production \
    PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEBMAIL_DATA_DIR=/data \
    WEBMAIL_MEDIA_ROOT=/data/media

# An unprivileged user that owns nothing but the data directory.
RUN groupadd --system --gid 10001 webmail \
    && useradd --system --uid 10001 --gid webmail --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin webmail \
    && mkdir -p /data/media \
    && chown -R webmail:webmail /data

WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY . .

# The settings import needs production secrets: throw-away values, for this step only.
RUN WEBMAIL_ENV=production \
    DJANGO_SECRET_KEY=collectstatic-build-only-not-a-secret \
    WEBMAIL_CREDENTIAL_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    DJANGO_ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --no-input

USER webmail
# Media (server-side mail store) and the Celery beat schedule.
VOLUME ["/data"]
EXPOSE 8000

# gthread workers: live IMAP reads block on the network, threads keep a worker busy.
CMD ["gunicorn", "webmail.wsgi:application", \
     "--bind", "0.0.0.0:8000", \
     "--workers", "3", "--threads", "4", \
     "--timeout", "60", "--graceful-timeout", "30", \
     "--worker-tmp-dir", "/dev/shm", \
     "--max-requests", "1000", "--max-requests-jitter", "100", \
     "--access-logfile", "-"]
