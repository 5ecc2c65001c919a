# Multi-stage build of the `feeledger` binary.
FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin feeledger

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/feeledger --create-home feeledger
COPY --from=build /src/target/release/feeledger /usr/local/bin/feeledger
USER feeledger
WORKDIR /var/lib/feeledger
ENV FEELEDGER_LISTEN=0.0.0.0:8080 \
    FEELEDGER_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["feeledger"]
CMD ["serve"]
