# Shared by the bench scripts (sourced, from the repository root).

log() { echo "bench: $*" >&2; }

# require TOOL...: every tool must be on PATH.
require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
  done
}

# publish_cli: a Release (ReadyToRun) publish of the CLI into bench/.out/cli; sets $cli.
publish_cli() {
  log "publishing the CLI (Release) to bench/.out/cli"
  dotnet publish src/Treechunk.Cli -c Release -o "$(pwd)/bench/.out/cli" --nologo -v quiet >&2
  cli="$(pwd)/bench/.out/cli/treechunk"
  [ -x "$cli" ] || { echo "bench: $cli was not produced" >&2; exit 2; }
}
