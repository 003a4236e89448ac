# One image for both services; the command picks one:
#   docker run IMAGE ingest        the Event Webhook receiver and source registry API (port 8000)
#   docker run IMAGE sync          scheduled Marketing Campaigns syncs (port 8001)
#   docker run IMAGE migrate       upgrade the control schema and every source schema
#   docker run -p 8000:8000 -p 8001:8001 -v sendgrid-source:/data IMAGE up
#                                  everything in one container, on SQLite in the volume
# docker-compose.yml runs them against PostgreSQL (profile postgres), or with the events in
# ClickHouse behind two ingest replicas and a load balancer (profile clickhouse).

FROM python:3.12-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels

# Not root. /data holds the generated ADMIN_TOKEN and SECRET_KEY (and the SQLite warehouse
# when DATABASE_URL is left at its default); a named volume mounted there inherits this owner.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin sendgrid \
    && mkdir /data && chown sendgrid:sendgrid /data
USER sendgrid
WORKDIR /data
VOLUME ["/data"]

ENV DATA_DIR=/data \
    DATABASE_URL=sqlite+aiosqlite:////data/sendgrid-source.db \
    INGEST_HOST=0.0.0.0 \
    SYNC_HOST=0.0.0.0
EXPOSE 8000 8001

ENTRYPOINT ["sendgrid-source"]
CMD ["ingest"]
