#!/usr/bin/env bash
# Starts or stops the Docker daemon the kind tests use: our own socket, exec root and data root (the data root
# lives in ~/.cache/ha-nginx/docker, so built images survive to the next run), and no iptables or default bridge,
# so the machine's own network is left alone. `start` is idempotent; `stop` stops only a daemon `start` started.
# Where the capability bounding set lacks CAP_SYS_RESOURCE (this CI's sandbox), privileged containers need a runc
# that drops it first: tools/runc-without-sys-resource becomes the default runtime.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${HA_NGINX_CACHE:-$HOME/.cache/ha-nginx}
run_dir=/run/ha-nginx-docker
socket=$run_dir/docker.sock
pid_file=$run_dir/dockerd.pid
log() { printf '[docker-daemon] %s\n' "$*" >&2; }

lacks_sys_resource() { # CAP_SYS_RESOURCE is bit 24 of the bounding set
  local bounding
  bounding=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
  (( (16#$bounding >> 24 & 1) == 0 ))
}

running() { [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

start() {
  if running; then log "already running (pid $(cat "$pid_file"))"; echo "DOCKER_HOST=unix://$socket"; return; fi
  mkdir -p "$run_dir/exec" "$cache/docker"
  local runtime=()
  if lacks_sys_resource; then
    local wrapper="$cache/bin/runc-without-sys-resource"
    mkdir -p "$cache/bin"
    (cd "$repo/tools/runc-without-sys-resource" && CGO_ENABLED=0 go build -trimpath -o "$wrapper" .)
    runtime=(--add-runtime "runc-without-sys-resource=$wrapper" --default-runtime runc-without-sys-resource)
    log "CAP_SYS_RESOURCE is not in the bounding set: privileged containers run through $wrapper"
  fi
  dockerd --host "unix://$socket" --data-root "$cache/docker" --exec-root "$run_dir/exec" --pidfile "$pid_file" \
    --iptables=false --ip6tables=false --bridge=none "${runtime[@]}" > "$run_dir/dockerd.log" 2>&1 &
  local deadline=$((SECONDS + 60))
  until DOCKER_HOST="unix://$socket" docker version > /dev/null 2>&1; do
    if (( SECONDS > deadline )) || ! kill -0 $! 2>/dev/null; then
      tail -30 "$run_dir/dockerd.log" >&2
      log "dockerd did not answer on $socket"
      exit 1
    fi
    sleep 0.5
  done
  log "started (pid $(cat "$pid_file")), log in $run_dir/dockerd.log"
  echo "DOCKER_HOST=unix://$socket"
}

stop() {
  running || { log "not running"; return; }
  local pid
  pid=$(cat "$pid_file")
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { log "stopped"; return; }; sleep 0.5; done
  log "dockerd $pid did not stop within 30 s; killing it"
  kill -9 "$pid" 2>/dev/null || true
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
