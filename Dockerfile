# Image for the web, worker and beat processes (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files (spec §6), hashed and compressed into STATIC_ROOT for WhiteNoise. Settings
# need these to import; collectstatic connects to neither server.
RUN SECRET_KEY=build-only-not-a-secret \
    DATABASE_URL=postgres://build:build@localhost:5432/build \
    REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --no-create-home app
USER app

EXPOSE 8000
# -v0: daphne's own access log off; the app logs one line per request (auction_site.access_log).
CMD ["daphne", "-v0", "-b", "0.0.0.0", "-p", "8000", "auction_site.asgi:application"]
