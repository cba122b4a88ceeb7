# shellcheck shell=bash
# Starting and stopping a background `shikaku serve` for the demo and the benchmark. Sourced
# after common.sh. The pid lives in $API_PID_FILE so a second run replaces the first server.

API_PID_FILE="${API_PID_FILE:-$REPO/target/demo/serve.pid}"

_api_port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# api_stop: stops the server started by api_start, if it is still running (SIGTERM: requests
# in flight finish, the access log is flushed).
api_stop() {
    [[ -f "$API_PID_FILE" ]] || return 0
    local pid
    pid="$(cat "$API_PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$API_PID_FILE"
}

# api_free_port PREFERRED: PREFERRED when free, else the next free one above it.
api_free_port() {
    local port="$1"
    while _api_port_busy "$port"; do port=$((port + 1)); done
    printf '%s\n' "$port"
}

# api_start BIN ADDRESS LOGFILE [serve flags...]: starts `BIN serve` in the background and
# waits until /healthz answers.
api_start() {
    local bin="$1" addr="$2" log="$3"
    shift 3
    api_stop
    mkdir -p "$(dirname "$API_PID_FILE")" "$(dirname "$log")"
    nohup "$bin" serve --bind "$addr" "$@" >"$log" 2>&1 &
    echo $! >"$API_PID_FILE"
    for _ in $(seq 1 150); do
        if curl -fsS "http://$addr/healthz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(cat "$API_PID_FILE")" 2>/dev/null || break
        sleep 0.2
    done
    tail -20 "$log" >&2 || true
    die "the API did not start on $addr (log: $log)"
}
