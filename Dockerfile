# syntax=docker/dockerfile:1
# hookrelay in a container (docs/deploy.md): built with the Rust toolchain on Debian bookworm,
# run from Debian bookworm-slim as an unprivileged user. The binary needs no system libraries
# beyond glibc (TLS is rustls with its own roots, jemalloc is linked in) and checks its own
# health (`hookrelay healthcheck`), so the runtime image installs nothing.
#
#   docker build -t hookrelay .
#   docker run -p 8080:8080 -v hookrelay-data:/var/lib/hookrelay hookrelay

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The caches keep the registry and the build between image builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p hookrelay --locked \
    && install -D -m 0755 target/release/hookrelay /out/hookrelay

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 hookrelay \
    && useradd --system --uid 10001 --gid hookrelay --no-create-home \
        --home-dir /var/lib/hookrelay --shell /usr/sbin/nologin hookrelay \
    && install -d -o hookrelay -g hookrelay -m 0750 /var/lib/hookrelay
COPY --from=builder /out/hookrelay /usr/local/bin/hookrelay
# Listen on every interface of the container; state (the SQLite database, and in dev/staging
# without HOOKRELAY_MASTER_KEY the generated key file) lives in the volume.
ENV HOOKRELAY_LISTEN=0.0.0.0:8080 \
    HOOKRELAY_DATABASE_URL=sqlite:///var/lib/hookrelay/hookrelay.db \
    HOOKRELAY_LOG_FORMAT=json
WORKDIR /var/lib/hookrelay
VOLUME ["/var/lib/hookrelay"]
USER 10001:10001
EXPOSE 8080
# GET /ready on the port of HOOKRELAY_LISTEN; exits 0 when the node is ready, 1 otherwise.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["hookrelay", "healthcheck"]
# SIGTERM: the node stops accepting and claiming, finishes in-flight attempts and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hookrelay"]
CMD ["serve"]
