# syntax=docker/dockerfile:1
# The hub as one image: `docker run hospital-hub serve`, `... topics create`, `... audit verify`.
# Built by docker-compose.kafka.yml; see docs/deploy-kafka.md.

# Build stage: wheels for the hub and every dependency, so the runtime image has no build tools.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUB_DATA_DIR=/var/lib/hub \
    HUB_API_HOST=0.0.0.0 \
    HUB_AUTH=keys \
    HUB_MLLP_HOST=0.0.0.0
# A fixed, unprivileged uid owns the data dir, so a named volume mounted there inherits that owner.
RUN groupadd --system --gid 10001 hub \
    && useradd --system --uid 10001 --gid hub --home-dir /var/lib/hub --no-create-home --shell /usr/sbin/nologin hub \
    && install -d -o hub -g hub -m 0750 /var/lib/hub
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels hospital-integration-hub
USER hub
WORKDIR /var/lib/hub
VOLUME ["/var/lib/hub"]
EXPOSE 8000 2575
ENTRYPOINT ["hub"]
CMD ["serve"]
