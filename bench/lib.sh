# Shared by the bench scripts (sourced, from the repository root).

log() { echo "bench: $*" >&2; }

# require TOOL...: every tool must be on PATH.
require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
  done
}

# publish_cli: a Release (native AOT) publish of the CLI into bench/.out/cli; sets $cli.
publish_cli() {
  log "publishing the CLI (Release) to bench/.out/cli"
  dotnet publish src/Treechunk.Cli -c Release -o "$(pwd)/bench/.out/cli" --nologo -v quiet >&2
  cli="$(pwd)/bench/.out/cli/treechunk"
  [ -x "$cli" ] || { echo "bench: $cli was not produced" >&2; exit 2; }
}

# start_registry DIR: a docker-registry on a free loopback port, storage and access log
# (combined format, bodies' byte counts) in DIR; sets $registry (127.0.0.1:PORT) and
# $registry_log, and stops it when the script exits.
# Keeps a bench away from the user's containers config and caches: HOME and XDG dirs under
# $1, and a registries.conf that names nothing.
isolate_home() {
  export HOME="$1/home" XDG_CACHE_HOME="$1/home/.cache" XDG_CONFIG_HOME="$1/home/.config" CONTAINERS_REGISTRIES_CONF="$1/none.conf"
}

start_registry() {
  local dir="$1" port
  mkdir -p "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$dir/registry.yml" <<YML
version: 0.1
log:
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
YML
  registry_log="$dir/registry.log"
  docker-registry serve "$dir/registry.yml" > "$registry_log" 2>&1 &
  registry_pid=$!
  trap 'kill $registry_pid 2>/dev/null || true' EXIT
  registry="127.0.0.1:$port"
  local _
  for _ in $(seq 50); do curl -sf "http://$registry/v2/" >/dev/null && return 0; sleep 0.1; done
  echo "bench: docker-registry did not start (log: $registry_log)" >&2
  exit 2
}

# partial_pull V1 V2 WORK: pushes images V1 and V2 (zstd:chunked references) to $registry,
# pulls v1 into the layout WORK/local, then v2 into the same layout with --json, and verifies
# it; prints bench/partial_measure.py's JSON (the client's and the registry log's byte counts,
# which it requires to agree).
partial_pull() {
  local work="$3" mark start end
  rm -rf "$work" && mkdir -p "$work"
  "$cli" oci push --insecure "$1" "docker://$registry/os/deb:v1" >/dev/null
  "$cli" oci push --insecure "$2" "docker://$registry/os/deb:v2" >/dev/null
  "$cli" oci pull --insecure "docker://$registry/os/deb:v1" "oci:$work/local:v1" >/dev/null
  mark=$(wc -l < "$registry_log")
  start=$(date +%s.%N)
  "$cli" oci pull --insecure --json "docker://$registry/os/deb:v2" "oci:$work/local:v2" > "$work/pull-v2.json"
  end=$(date +%s.%N)
  tail -n +"$((mark + 1))" "$registry_log" > "$work/registry-v2.log"
  "$cli" oci verify-layers "oci:$work/local:v2" >/dev/null
  python3 bench/partial_measure.py "$work/local" "$work/pull-v2.json" "$work/registry-v2.log" "$(python3 -c "print($end - $start)")"
}
