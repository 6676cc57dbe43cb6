# Production image: PostgreSQL via DATABASE_URL=postgresql+asyncpg://user:password@host:5432/helsebro
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /srv/helsebro
RUN useradd --system --uid 10001 --home /srv/helsebro helsebro

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install . && chown -R helsebro /srv/helsebro

USER helsebro
EXPOSE 8080
# Migrate, then serve (WORKERS processes). Scale out with more containers behind a load balancer: the API
# is stateless.
CMD ["sh", "-c", "alembic upgrade head && exec python -m app.serve --host 0.0.0.0 --port 8080"]
