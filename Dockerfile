# syntax=docker/dockerfile:1
# Roster's container image: `docker build -t roster .` (docker-compose.yml builds it too).
# Stage 1 compiles the release binary; stage 2 is a slim Debian with only that binary and CA
# certificates, run as an unprivileged user. Settings come from the environment
# (docs/operations.md); the image's own defaults only make it listen on all interfaces.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the crate downloads and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin roster \
 && install -D target/release/roster /out/roster

FROM debian:bookworm-slim
# ca-certificates unpinned: bookworm's security updates replace the version, so a pin would break
# the build rather than keep it reproducible.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 roster \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin roster
COPY --from=builder /out/roster /usr/local/bin/roster
# Numeric, so Kubernetes `runAsNonRoot` can tell it is not root.
USER 10001:10001
ENV ROSTER_BIND=0.0.0.0:8080
EXPOSE 8080
# No curl in this image: the binary asks its own /readyz (database reachable, migrations applied).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["roster", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["roster"]
CMD ["serve"]
