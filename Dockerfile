# syntax=docker/dockerfile:1
# The chat-room image: dependencies compiled in their own cached layer
# (cargo-chef), a --locked release build, and a small non-root runtime with
# the one binary `chat-room` (serve, migrate, token, healthcheck), port 8001.
#
#   docker build -t graintrade/chat-room .
#   docker run -p 8001:8001 graintrade/chat-room            # SQLite in /app/data
#   docker run --rm -e DATABASE_URL=postgres://… graintrade/chat-room migrate up

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.77
WORKDIR /src

# The recipe: only the manifests and the lock file, so the next stage's
# dependency layer is rebuilt only when those change.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p chat-api
COPY . .
RUN cargo build --release --locked -p chat-api --bin chat-room \
 && cp target/release/chat-room /usr/local/bin/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --uid 10001 --home-dir /app --shell /usr/sbin/nologin chat \
 && mkdir -p /app/data \
 && chown chat:chat /app/data
WORKDIR /app
COPY --from=build /usr/local/bin/chat-room /usr/local/bin/
COPY config ./config
USER 10001:10001
ENV HOST=0.0.0.0 \
    PORT=8001 \
    DATABASE_URL=sqlite:///app/data/chat.db?mode=rwc
EXPOSE 8001
VOLUME ["/app/data"]
# `chat-room healthcheck` asks this container's /health: 200 (ok or degraded) is healthy.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["chat-room", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["chat-room"]
