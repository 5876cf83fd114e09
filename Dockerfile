# syntax=docker/dockerfile:1
#
# incidentd's container image: a static binary on distroless, running as a
# non-root user. Build from the repository root:
#
#   docker build -t incidentd:dev .
#   docker run --rm -p 8080:8080 incidentd:dev     # SQLite in the /data volume
#
# deploy/compose.yaml runs two replicas of it on PostgreSQL behind HAProxy.

# The build stage's Go matches go.mod's `go` line, so that no toolchain is
# fetched during the build. Images are named in full so that podman and
# buildah, which refuse short names by default, build this file as it is.
FROM docker.io/library/golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: the SQLite driver (modernc.org/sqlite) is pure Go, so the binary
# needs no libc and runs on an image without one. -trimpath keeps the build
# machine's paths out of the binary; -s -w drop the symbol tables (a third of
# its size; panics still print file:line). /rootfs/data becomes the volume
# the default SQLite store writes to.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /rootfs/incidentd ./cmd/incidentd \
    && mkdir -p /rootfs/data

# distroless/static: CA certificates (OIDC discovery and OTLP over https need
# them), tzdata and a nonroot user (65532), and no shell, so that nothing but
# the binary can run in the container.
FROM gcr.io/distroless/static-debian12:nonroot
# The binary stays root's so that the process cannot replace it; /data is the
# runtime user's so that SQLite can create its files there.
COPY --from=build /rootfs/incidentd /incidentd
COPY --from=build --chown=65532:65532 /rootfs/data /data
# Numeric, so that runtimes that refuse named non-root users (Kubernetes'
# runAsNonRoot) can check it without reading /etc/passwd.
USER 65532:65532
# The binary's default listen address is 127.0.0.1:8080, which nothing
# outside the container can reach; its default store is a path relative to
# the working directory. Both are set for the container; DATABASE_URL is
# replaced by a postgres:// URL for more than one replica (SQLite is for a
# single instance).
ENV INCIDENTD_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/incidentd.db
VOLUME ["/data"]
EXPOSE 8080
# No HEALTHCHECK: distroless has no shell or curl to run one, and the binary
# has no probe subcommand. Orchestrators and load balancers probe
# GET /healthz (the process is up) and GET /readyz (the database answers)
# over HTTP instead, as deploy/haproxy.cfg does.
ENTRYPOINT ["/incidentd"]
CMD ["serve"]
