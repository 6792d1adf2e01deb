# One image for every EchoFS role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LOG_FORMAT=json
RUN useradd --create-home --uid 10001 echofs && mkdir /data && chown echofs /data
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY echofs ./echofs
COPY migrations ./migrations
RUN pip install --no-cache-dir .

USER echofs
VOLUME /data
# HTTP (API, /health, /metrics) and gRPC of master, controller and a worker.
EXPOSE 8080 9080 8082 9082 8091 9091
# The master's health; docker-compose.yml gives the other roles their own.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/api/v1/health', timeout=2)" || exit 1
# Without authentication EchoFS only binds loopback addresses, so this image
# serves its own loopback until accounts (JWT_SECRET) arrive; see README.
CMD ["echofs", "serve", "--data-dir", "/data"]
