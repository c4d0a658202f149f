# One image for every soh-es process: the API under gunicorn (the default
# command), the projection worker and the one-shot `soh init`. Configured
# only through environment variables; see the README's configuration table.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY soh_es ./soh_es
COPY projections ./projections
COPY api ./api
COPY gunicorn.conf.py ./
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin soh \
    && mkdir -p /app/data \
    && chown soh /app/data

USER soh
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "api:create_app()"]
