#!/usr/bin/env bash
# Builds and runs the Dockerfile's final stage with podman, in place of the
# full multi-stage build where the base images cannot be pulled (CI reaches
# the Go module proxy and Debian's mirrors, not Docker Hub or gcr.io):
#
#   - the binary is built here exactly as the build stage builds it
#     (CGO_ENABLED=0, -trimpath, -ldflags "-s -w");
#   - the final stage is taken from the Dockerfile as written, with its base
#     swapped for `scratch` (distroless/static adds CA certificates, tzdata
#     and /etc/passwd, none of which this smoke test needs) and its
#     `COPY --from=build /rootfs/...` reading the files built here;
#   - the image runs with its default command (serve, SQLite in the /data
#     volume, as a non-root user) and must answer /healthz and /readyz, run
#     `migrate`, and stop cleanly on SIGTERM.
#
# Quirks of the CI machine handled here: crun refuses the hybrid cgroup
# v1/v2 layout, so runc runs the container; podman's default ulimits are above
# what the sandbox lets a process raise, so nofile and nproc are given.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
tag="localhost/incidentd-smoke:$$"
name="incidentd-smoke-$$"
podman=(podman --runtime runc)
cleanup() {
  "${podman[@]}" rm -f "$name" >/dev/null 2>&1 || true
  "${podman[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/rootfs/data"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/rootfs/incidentd" ./cmd/incidentd

# The final stage: from its FROM to the end of the Dockerfile.
awk '/^FROM /{n=NR} {line[NR]=$0} END{for(i=n;i<=NR;i++) print line[i]}' Dockerfile |
  sed -e '1s|^FROM .*|FROM scratch|' -e 's|--from=build \(.*\)/rootfs/|\1rootfs/|' > "$work/Containerfile"
grep -q '^COPY rootfs/incidentd /incidentd$' "$work/Containerfile" || {
  echo "image-smoke: the Dockerfile's final stage no longer copies /rootfs/incidentd; update this script"; cat "$work/Containerfile"; exit 1; }

"${podman[@]}" build -q -t "$tag" -f "$work/Containerfile" "$work" >/dev/null
user=$("${podman[@]}" image inspect --format '{{.Config.User}}' "$tag")
case "$user" in ''|0|0:*|root|root:*) echo "image-smoke: the image runs as root ($user)"; exit 1 ;; esac

limits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
"${podman[@]}" run --rm "${limits[@]}" "$tag" migrate
"${podman[@]}" run -d --name "$name" "${limits[@]}" -p 127.0.0.1::8080 "$tag" >/dev/null
port=$("${podman[@]}" port "$name" 8080/tcp | sed 's/.*://')
ok=
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.5
done
[ -n "$ok" ] || { echo "image-smoke: /readyz never answered 200"; "${podman[@]}" logs "$name"; exit 1; }
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null
"${podman[@]}" stop -t 20 "$name" >/dev/null
code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { echo "image-smoke: exit code $code after SIGTERM"; "${podman[@]}" logs "$name"; exit 1; }
echo "image-smoke: ok (user $user; /healthz, /readyz, migrate, clean stop on SIGTERM)"
