# syntax=docker/dockerfile:1
# Multi-stage build: dependencies cached in their own layer, a --locked release
# build, and a small non-root runtime image listening on 8001.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Cache dependencies: build the workspace once with stub sources.
COPY Cargo.toml Cargo.lock ./
COPY crates/domain/Cargo.toml crates/domain/
COPY crates/infra/Cargo.toml crates/infra/
COPY crates/api/Cargo.toml crates/api/
COPY migration/Cargo.toml migration/
COPY tests/Cargo.toml tests/
RUN for d in crates/domain crates/infra crates/api migration; do mkdir -p $d/src && echo "" > $d/src/lib.rs; done \
 && echo "fn main() {}" > crates/api/src/main.rs && echo "fn main() {}" > migration/src/main.rs \
 && mkdir -p tests/support config && echo "" > tests/support/lib.rs && touch tests/rooms.rs tests/messages.rs \
 && echo "" > config/default.toml \
 && cargo build --release --locked -p chat-api || true
COPY . .
RUN touch crates/*/src/*.rs migration/src/*.rs \
 && cargo build --release --locked -p chat-api -p migration

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app chat \
 && mkdir -p /app/data && chown chat /app/data
WORKDIR /app
COPY --from=build /src/target/release/chat-room /usr/local/bin/chat-room
COPY --from=build /src/target/release/migration /usr/local/bin/migration
COPY config ./config
USER chat
ENV HOST=0.0.0.0 PORT=8001 DATABASE_URL=sqlite:///app/data/chat.db?mode=rwc
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8001/health || exit 1
ENTRYPOINT ["chat-room"]
