# slo-bot: `docker build -t slo-bot . && docker run -e DATABASE_URL=... -e SLACK_BOT_TOKEN=... slo-bot`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml constraints.txt README.md alembic.ini manifest.yml ./
COPY bot ./bot
COPY migrations ./migrations
COPY examples ./examples
RUN pip install -c constraints.txt . && useradd --system --uid 10001 slobot && mkdir /data && chown slobot /data

USER slobot
ENV DATABASE_URL=sqlite:////data/slo-bot.db SLO_BOT_HOST=0.0.0.0
EXPOSE 3000
# /healthz is served in every mode (console mode too): 503 when evaluations stall or the database takes no writes
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/healthz').status != 200)"
ENTRYPOINT ["slo-bot"]
CMD ["run", "--port", "3000"]
