# slo-bot: `docker build -t slo-bot . && docker run -e DATABASE_URL=... -e SLACK_BOT_TOKEN=... slo-bot`
# Two stages: the builder installs slo-bot and exactly the versions pinned in constraints.txt into a
# virtualenv; the final image gets that virtualenv alone (no pip cache, no build tools, no dev extras).
# Both stages use the same base image, so the virtualenv's interpreter link stays valid.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
COPY migrations ./migrations
# Wheels only: every pinned package ships them, so the builder needs no compiler (a package that
# would have to be compiled fails the build here instead of pulling a toolchain into it).
RUN /opt/venv/bin/pip install --only-binary=:all: -c constraints.txt .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
# A numeric user, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
RUN groupadd --system --gid 10001 slobot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent slobot \
    && mkdir /data && chown 10001:10001 /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY examples ./examples

USER 10001:10001
ENV DATABASE_URL=sqlite:////data/slo-bot.db SLO_BOT_HOST=0.0.0.0
# Burn-down charts: matplotlib keeps its font cache in a writable place (the home directory is not;
# /tmp is an emptyDir in deploy/), and console mode writes its chart files beside the database.
ENV MPLCONFIGDIR=/tmp/matplotlib SLO_BOT_CHART_DIR=/data/charts
EXPOSE 3000
# /healthz is served in every mode (console mode too): 503 when evaluations stall or the database takes no writes
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/healthz').status != 200)"
ENTRYPOINT ["slo-bot"]
CMD ["run", "--port", "3000"]
