#!/usr/bin/env bash
# A real local LAVA lab for csdci's tests (and for trying `--lab lava` by hand):
# Debian's lava-server + lava-dispatcher with PostgreSQL, started by hand (no
# systemd needed; the commands are the ExecStart lines of LAVA's unit files),
# one worker and N `qemu` devices (TCG: no_kvm).
#
#   lab.sh start          install if missing (as root), start everything, create
#                         the admin user, an API token, the worker and the devices
#                         (idempotent), wait until the worker is Online and the
#                         devices Idle/Good; prints KEY=VALUE lines (also in
#                         $CSDCI_LAVA_DIR/lab.env): LAVA_URL, LAVA_TOKEN_FILE,
#                         LAVA_DEVICE_TYPE, LAVA_DEVICES
#   lab.sh stop           stops the worker, scheduler, publisher and gunicorn
#                         (PostgreSQL keeps running)
#   lab.sh stop-server    stops gunicorn (the REST API goes away; jobs keep running)
#   lab.sh start-server   starts gunicorn again
#   lab.sh kill-worker    SIGKILLs lava-worker and the lava-run/qemu it started
#   lab.sh start-worker   starts lava-worker again
#   lab.sh status         prints the daemons' pids and the devices' states
#
# Environment: CSDCI_LAVA_PORT (HTTP port on 127.0.0.1, default 18080; the
# event publisher uses PORT+1), CSDCI_LAVA_DIR (state: pids, logs, token; default
# /var/tmp/csdci-lava), CSDCI_LAVA_DEVICES (number of qemu devices, default 2),
# CSDCI_LAVA_DEVICE_MEMORY (MiB in the device dictionaries, default 1024).
#
# It installs lava-server and lava-dispatcher itself (apt-get, with
# --no-install-recommends) when they are missing; .ci/deps does not.
set -euo pipefail

port="${CSDCI_LAVA_PORT:-18080}"
pub_port=$((port + 1))
dir="${CSDCI_LAVA_DIR:-/var/tmp/csdci-lava}"
ndev="${CSDCI_LAVA_DEVICES:-2}"
memory="${CSDCI_LAVA_DEVICE_MEMORY:-1024}"
url="http://127.0.0.1:${port}"
worker=csdci-worker
dtype=qemu
pg_version=15

die() { echo "lab.sh: $*" >&2; exit 1; }
log() { echo "lab.sh: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (LAVA's daemons and files belong to root and lavaserver)"
mkdir -p "$dir/pids" "$dir/logs"

manage() { lava-server manage "$@"; }

start_pg() {
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $4}' | grep -q online; then
    pg_ctlcluster "$pg_version" main start
  fi
}

install() {
  if dpkg-query -W -f='${Status}' lava-server 2>/dev/null | grep -q "install ok installed" &&
     dpkg-query -W -f='${Status}' lava-dispatcher 2>/dev/null | grep -q "install ok installed"; then
    return
  fi
  # lava-server's postinst creates its database and runs the migrations:
  # PostgreSQL must be up first.
  start_pg
  log "installing lava-server lava-dispatcher (about 2 min)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends lava-server lava-dispatcher >"$dir/logs/apt.log" 2>&1 ||
    { apt-get update -q >>"$dir/logs/apt.log" 2>&1 &&
      apt-get install -y -q --no-install-recommends lava-server lava-dispatcher >>"$dir/logs/apt.log" 2>&1; } ||
    die "apt-get install lava-server lava-dispatcher failed; see $dir/logs/apt.log"
}

pid_alive() { [ -f "$dir/pids/$1" ] && kill -0 "$(cat "$dir/pids/$1")" 2>/dev/null; }

# spawn NAME CMD...: starts CMD in its own session (from /), records its pid.
spawn() {
  local name=$1; shift
  if pid_alive "$name"; then return; fi
  (cd / && exec setsid "$@" </dev/null >>"$dir/logs/$name.out" 2>&1) &
  echo $! >"$dir/pids/$name"
}

# stop_pid NAME [SIGNAL]: signals the process group NAME leads, waits for it.
stop_pid() {
  local name=$1 sig=${2:-TERM} pid
  pid_alive "$name" || { rm -f "$dir/pids/$name"; return 0; }
  pid=$(cat "$dir/pids/$name")
  kill -"$sig" -- "-$pid" 2>/dev/null || kill -"$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  rm -f "$dir/pids/$name"
}

settings() {
  # Events: the scheduler reacts to a submitted job at once (instead of every
  # 20 s), and the worker is woken by the publisher's websocket.
  local f=/etc/lava-server/settings.d/50-csdci-events.yaml
  [ -f "$f" ] || printf 'EVENT_NOTIFICATION: true\n' >"$f"
}

start_server() {
  spawn gunicorn /usr/bin/gunicorn3 lava_server.wsgi --log-level INFO \
    --log-file /var/log/lava-server/gunicorn.log -u lavaserver -g lavaserver \
    --worker-class eventlet --workers 2 --bind "127.0.0.1:${port}"
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$url/api/v0.2/system/version/" 2>/dev/null && return 0
    pid_alive gunicorn || die "gunicorn exited; see /var/log/lava-server/gunicorn.log and $dir/logs/gunicorn.out"
    sleep 0.2
  done
  die "gunicorn does not answer on $url after 30 s"
}

start_daemons() {
  spawn publisher /usr/bin/lava-server manage lava-publisher --level INFO \
    --log-file /var/log/lava-server/lava-publisher.log --host 127.0.0.1 --port "$pub_port"
  spawn scheduler /usr/bin/lava-server manage lava-scheduler --level INFO \
    --log-file /var/log/lava-server/lava-scheduler.log
}

worker_token() {
  manage workers details "$worker" | sed -n 's/^token *: //p'
}

start_worker() {
  local tok
  tok=$(worker_token)
  [ -n "$tok" ] || die "no token for worker $worker (run lab.sh start first)"
  printf '%s' "$tok" >"$dir/worker-token"
  chmod 600 "$dir/worker-token"
  spawn worker /usr/bin/lava-worker --level INFO --url "$url/" --ws-url "http://127.0.0.1:${pub_port}/ws/" \
    --token-file "$dir/worker-token" --name "$worker" --ping-interval 5 --job-log-interval 2 \
    --log-file "$dir/logs/lava-worker.log"
}

setup_objects() {
  # The admin user and its API token.
  if ! manage users details admin >/dev/null 2>&1; then
    manage users add --superuser --staff --passwd "csdci-$(date +%s%N)" admin >/dev/null
  fi
  local tok
  tok=$(manage tokens list --user admin --csv | awk -F, '$3 == "csdci" {print $2; exit}')
  if [ -z "$tok" ]; then
    tok=$(manage tokens add --user admin --description csdci | tail -1)
  fi
  umask 077
  printf '%s\n' "$tok" >"$dir/token"
  umask 022
  # The worker, the device type and the devices.
  manage workers details "$worker" >/dev/null 2>&1 ||
    manage workers add --description "csdci test worker" "$worker" >/dev/null
  manage device-types details "$dtype" >/dev/null 2>&1 || manage device-types add "$dtype" >/dev/null
  local i name dict
  for i in $(seq 1 "$ndev"); do
    name=$(printf 'csdci-qemu%02d' "$i")
    dict=/etc/lava-server/dispatcher-config/devices/$name.jinja2
    cat >"$dict.new" <<EOF
{% extends 'qemu.jinja2' %}
{% set mac_addr = '52:54:00:12:35:$(printf '%02x' "$i")' %}
{% set memory = $memory %}
{% set no_kvm = True %}
EOF
    mv "$dict.new" "$dict"
    chown lavaserver:lavaserver "$dict" 2>/dev/null || true
    manage devices details "$name" >/dev/null 2>&1 ||
      manage devices add --device-type "$dtype" --worker "$worker" "$name" >/dev/null
  done
  # Devices that are not (or no more) Good: Good. Retired ones stay retired.
  local api="$url/api/v0.2"
  for i in $(seq 1 "$ndev"); do
    name=$(printf 'csdci-qemu%02d' "$i")
    local health
    health=$(curl -fsS -H "Authorization: Token $tok" "$api/devices/$name/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["health"])')
    [ "$health" = Good ] || [ "$health" = Retired ] || manage devices update --health GOOD "$name" >/dev/null
  done
}

wait_ready() {
  local tok api="$url/api/v0.2" i
  tok=$(cat "$dir/token")
  for i in $(seq 1 120); do
    local w d
    w=$(curl -fsS -H "Authorization: Token $tok" "$api/workers/$worker/" 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || true)
    d=$(curl -fsS -H "Authorization: Token $tok" "$api/devices/?device_type=$dtype&limit=100" 2>/dev/null |
      python3 -c '
import json, sys
r = json.load(sys.stdin)["results"]
mine = [x for x in r if x["hostname"].startswith("csdci-qemu")]
ok = [x for x in mine if x["state"] == "Idle" and x["health"] == "Good"]
print(len(ok))' 2>/dev/null || echo 0)
    if [ "$w" = Online ] && [ "$d" -ge "$ndev" ]; then return 0; fi
    pid_alive worker || die "lava-worker exited; see $dir/logs/lava-worker.log"
    sleep 0.5
  done
  die "worker not Online or devices not Idle/Good after 60 s (worker: ${w:-?}); see $dir/logs/"
}

print_env() {
  local devs="" i
  for i in $(seq 1 "$ndev"); do devs="$devs $(printf 'csdci-qemu%02d' "$i")"; done
  cat >"$dir/lab.env" <<EOF
LAVA_URL=$url
LAVA_TOKEN_FILE=$dir/token
LAVA_DEVICE_TYPE=$dtype
LAVA_DEVICES=${devs# }
EOF
  cat "$dir/lab.env"
}

cmd=${1:-start}
case "$cmd" in
  start)
    install
    start_pg
    settings
    start_server
    start_daemons
    setup_objects
    start_worker
    wait_ready
    print_env
    ;;
  stop)
    stop_pid worker
    stop_pid scheduler
    stop_pid publisher
    stop_pid gunicorn
    ;;
  stop-server) stop_pid gunicorn ;;
  start-server) start_pg; start_server ;;
  kill-worker)
    # As if the worker host died: lava-worker and every lava-run and qemu it
    # started (its session; lava-run runs in its own process group).
    if pid_alive worker; then
      sid=$(cat "$dir/pids/worker")
      for p in $(ps -o pid= -s "$sid"); do kill -KILL "$p" 2>/dev/null || true; done
    fi
    rm -f "$dir/pids/worker"
    ;;
  start-worker) start_worker ;;
  status)
    for n in gunicorn publisher scheduler worker; do
      if pid_alive "$n"; then echo "$n $(cat "$dir/pids/$n")"; else echo "$n down"; fi
    done
    ;;
  *) die "unknown command '$cmd' (use start, stop, stop-server, start-server, kill-worker, start-worker, status)" ;;
esac
