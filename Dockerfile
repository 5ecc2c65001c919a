# Multi-stage build of the `feeledger` binary.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin feeledger \
    && cp target/release/feeledger /usr/local/bin/feeledger

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/feeledger --create-home feeledger
COPY --from=build /usr/local/bin/feeledger /usr/local/bin/feeledger
USER feeledger
WORKDIR /var/lib/feeledger
ENV FEELEDGER_LISTEN=0.0.0.0:8080 \
    FEELEDGER_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
# SIGTERM (docker stop) finishes requests in flight; live subscriptions get 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["feeledger"]
CMD ["serve"]
