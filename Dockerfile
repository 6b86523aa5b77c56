# One image for every guahao process. The default command runs the gateway; each compose
# service picks its process with `command: ["python", "-m", "services.<name>"]`.
# No HEALTHCHECK here: the checks live in docker-compose.yml (they differ per process).

# 0. The staff console (Vue + TDesign), built from its locked npm dependencies; only the
#    built files reach the image, which the gateway serves at /console/.
FROM node:22-slim AS console
WORKDIR /console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY console/ ./
RUN npm run build

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    GUAHAO_DATA_DIR=/data

WORKDIR /app

# 1. Third-party dependencies only, exactly as locked (versions and sha256 of every file:
#    `make lock` writes requirements.lock from pyproject.toml, `make test` checks they
#    match). This layer is rebuilt only when the lock changes, not on every source edit.
COPY pyproject.toml requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# 2. An unprivileged user, and the data dir it may write (dev keys are generated there only
#    when GUAHAO_JWT_PRIVATE_KEY / GUAHAO_PII_KEY / GUAHAO_WEBHOOK_KEY are unset).
RUN groupadd --system --gid 10001 guahao \
 && useradd --system --uid 10001 --gid guahao --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin guahao \
 && mkdir -p /data \
 && chown guahao:guahao /data

# 3. The source. Run in place (PYTHONPATH=/app): the processes are `python -m <package>`.
COPY shared ./shared
COPY gateway ./gateway
COPY services ./services
# The WeChat fake (deploy/compose.wechat-fake.yml) accepts only the pages of this file (41030).
COPY miniprogram/app.json ./miniprogram/app.json
COPY --from=console /console/dist ./console/dist
RUN python -m compileall -q shared gateway services

USER 10001:10001

EXPOSE 8080 9100
CMD ["python", "-m", "gateway"]
