# shellcheck shell=bash
# PostgreSQL lifecycle for the scripts. Sourced by common.sh (needs REPO,
# info, warn, die, is_root, ensure_apt_packages).
#
# Two modes:
#  * DATABASE_URL is set: that server is used as it is. It must be reachable;
#    start/stop leave it alone.
#  * Otherwise: a project-local cluster, made with initdb from the installed
#    PostgreSQL binaries (installed with apt-get when missing and root):
#        $REPO/.pgdata/data          the cluster (PGDATA)
#        $REPO/.pgdata/run           its Unix socket directory
#        $REPO/.pgdata/postgres.log  its log
#        $REPO/.pgdata/port          the port it was last started on
#    listening on 127.0.0.1:${SHIKAKU_PG_PORT:-54329} only, trust auth,
#    superuser `postgres`, application database ${SHIKAKU_DB_NAME:-shikaku}.
#    PostgreSQL refuses to run as root: as root, the cluster belongs to and
#    runs as the `postgres` system user (a `shikaku-pg` system user is made
#    when there is none). If that user cannot reach the repository (a clone
#    under /root, say) the cluster lives in /tmp/shikaku-pg-<hash of repo path>
#    instead. A socket path too long for a Unix socket (or with spaces or
#    quotes) moves to /tmp/shikaku-pg-<hash>.run.

PG_DEFAULT_PORT=54329
PG_SUPERUSER=postgres
PG_FALLBACK_USER=shikaku-pg
PG_STARTED_BY_US=""

pg_db_name() {
    local name="${SHIKAKU_DB_NAME:-shikaku}"
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] \
        || die "SHIKAKU_DB_NAME='$name': use letters, digits and underscores only"
    printf '%s\n' "$name"
}

pg_external() { [[ -n "${DATABASE_URL:-}" ]]; }

# The URL with any password replaced, for messages.
pg_redact_url() {
    local url="$1"
    if [[ "$url" =~ ^([a-z]+://[^:/@]+:)[^@]*@(.*)$ ]]; then
        printf '%s***@%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    else
        printf '%s\n' "$url"
    fi
}

# pg_url_with_db URL DB: the same server and user, another database.
pg_url_with_db() {
    local url="$1" db="$2"
    if [[ "$url" =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
        printf '%s/%s%s\n' "${BASH_REMATCH[1]}" "$db" "${BASH_REMATCH[4]}"
    else
        die "cannot parse database URL (want postgres://user@host:port/db): $(pg_redact_url "$url")"
    fi
}

_pg_hash() { printf '%s' "$REPO" | sha256sum | cut -c1-12; }

# --- client ------------------------------------------------------------------

# Sets PG_PSQL to a psql client (from the server's bindir if we have one).
pg_find_client() {
    if [[ -n "${PG_BINDIR:-}" && -x "$PG_BINDIR/psql" ]]; then
        PG_PSQL="$PG_BINDIR/psql"
        return 0
    fi
    if ! command -v psql >/dev/null 2>&1; then
        ensure_apt_packages postgresql-client
    fi
    PG_PSQL="$(command -v psql)" || die "psql not found (Debian package: postgresql-client)"
}

# pg_query URL SQL: runs SQL, prints unaligned tuples-only output.
pg_query() {
    PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}" PGOPTIONS="-c client_min_messages=warning ${PGOPTIONS:-}" \
        "$PG_PSQL" -X -q -tA -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# pg_check_url URL: dies with the server's message unless URL answers `select 1`.
pg_check_url() {
    local url="$1" err
    [[ "$url" =~ ^postgres(ql)?:// ]] \
        || die "DATABASE_URL must be a postgres://user@host:port/database URL, not '$(pg_redact_url "$url")'"
    pg_find_client
    if ! err="$(pg_query "$url" 'select 1' 2>&1 >/dev/null)"; then
        die "DATABASE_URL is set but the database is not reachable: $(pg_redact_url "$url")
    ${err//$'\n'/$'\n'    }
Fix the URL or start that server, or unset DATABASE_URL to use the project-local cluster (scripts/db start)."
    fi
}

# --- binaries ----------------------------------------------------------------

_pg_bindir_ok() { [[ -x "$1/initdb" && -x "$1/postgres" && -x "$1/pg_ctl" ]]; }

# pg_find_bindir [MAJOR]: sets PG_BINDIR and PG_MAJOR. With MAJOR, only that
# version will do (an existing cluster was made by it). Installs PostgreSQL
# with apt-get when none is found and we are root.
pg_find_bindir() {
    local want="${1:-}" d candidates=() tries
    for tries in 1 2; do
        candidates=()
        if [[ -n "$want" ]]; then
            candidates+=("/usr/lib/postgresql/$want/bin")
        else
            # Debian's versioned directories, newest first. Prefer these to
            # PATH: /usr/local/bin may hold wrappers or stray symlinks.
            mapfile -t candidates < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -V -r)
            if command -v pg_config >/dev/null 2>&1; then
                candidates+=("$(pg_config --bindir 2>/dev/null || true)")
            fi
            if command -v initdb >/dev/null 2>&1; then
                candidates+=("$(dirname "$(readlink -f "$(command -v initdb)")")")
            fi
        fi
        for d in "${candidates[@]}"; do
            [[ -n "$d" ]] || continue
            if _pg_bindir_ok "$d"; then
                PG_BINDIR="$d"
                PG_MAJOR="$("$d/postgres" -V | grep -oE '[0-9]+' | head -n1)"
                if [[ -n "$want" && "$PG_MAJOR" != "$want" ]]; then
                    continue
                fi
                return 0
            fi
        done
        [[ $tries -eq 1 ]] || break
        if [[ -n "$want" ]]; then
            info "the cluster in $PG_DATA was made by PostgreSQL $want, which is not installed"
            ensure_apt_packages "postgresql-$want" postgresql-contrib
        else
            info "no PostgreSQL server binaries (initdb, postgres, pg_ctl) found"
            ensure_apt_packages postgresql postgresql-contrib
        fi
    done
    if [[ -n "$want" ]]; then
        die "PostgreSQL $want binaries not found for the cluster in $PG_DATA; install postgresql-$want or remove that directory"
    fi
    die "PostgreSQL server binaries not found; install PostgreSQL (Debian: apt-get install postgresql postgresql-contrib)"
}

# --- layout and ownership ----------------------------------------------------

# pg_as_owner CMD...: runs CMD as the cluster's owner (see pg_local_layout),
# from / so that an unreadable working directory does not matter.
pg_as_owner() {
    if [[ -n "${PG_OS_USER:-}" ]]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        "$@"
    fi
}

_pg_user_exists() { id -u "$1" >/dev/null 2>&1; }

# Creates the dedicated system user for the cluster.
_pg_create_user() {
    info "creating system user $PG_FALLBACK_USER to run the project-local PostgreSQL (it refuses to run as root)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$PG_FALLBACK_USER" \
        || die "useradd $PG_FALLBACK_USER failed"
}

# pg_local_layout [create]: sets PG_ROOT, PG_DATA, PG_SOCKDIR, PG_LOG,
# PG_PORT_FILE and PG_OS_USER (empty when not root). With `create`, makes the
# directories and, when root, the system user.
pg_local_layout() {
    local create="${1:-}" repo_root="$REPO/.pgdata" tmp_root
    tmp_root="/tmp/shikaku-pg-$(_pg_hash)"

    if [[ -f "$repo_root/data/PG_VERSION" ]]; then
        PG_ROOT="$repo_root"
    elif [[ -f "$tmp_root/data/PG_VERSION" ]]; then
        PG_ROOT="$tmp_root"
    else
        PG_ROOT="$repo_root"
    fi
    PG_DATA="$PG_ROOT/data"
    PG_OS_USER=""

    if is_root; then
        if [[ -d "$PG_DATA" ]]; then
            PG_OS_USER="$(stat -c %U "$PG_DATA")"
            [[ "$PG_OS_USER" != root ]] \
                || die "$PG_DATA belongs to root; PostgreSQL cannot run as root. Remove it and run scripts/db start again"
        elif _pg_user_exists "$PG_SUPERUSER"; then
            PG_OS_USER="$PG_SUPERUSER"
        elif _pg_user_exists "$PG_FALLBACK_USER"; then
            PG_OS_USER="$PG_FALLBACK_USER"
        elif [[ "$create" == create ]]; then
            _pg_create_user
            PG_OS_USER="$PG_FALLBACK_USER"
        fi
        # A new cluster: can its owner reach a folder inside the repository?
        if [[ "$create" == create && ! -d "$PG_DATA" && "$PG_ROOT" == "$repo_root" ]] \
            && ! runuser -u "$PG_OS_USER" -- test -x "$REPO" 2>/dev/null; then
            info "user $PG_OS_USER cannot traverse to $REPO; the project-local cluster goes in $tmp_root instead"
            mkdir -p "$repo_root"
            printf 'The project-local PostgreSQL cluster of this checkout lives in %s\n(user %s could not reach this folder).\n' \
                "$tmp_root" "$PG_OS_USER" >"$repo_root/WHERE.txt"
            PG_ROOT="$tmp_root"
            PG_DATA="$PG_ROOT/data"
        fi
    elif [[ -d "$PG_DATA" && ! -O "$PG_DATA" ]]; then
        die "$PG_DATA belongs to $(stat -c %U "$PG_DATA"), not to you; run as that user (or root), or use DATABASE_URL"
    fi

    PG_LOG="$PG_ROOT/postgres.log"
    PG_PORT_FILE="$PG_ROOT/port"
    PG_SOCKDIR="$PG_ROOT/run"
    # sun_path holds 107 bytes; the socket file name adds 17 (/.s.PGSQL.NNNNN).
    # unix_socket_directories is a list, so keep separators out of the path.
    if ((${#PG_SOCKDIR} > 88)) || [[ "$PG_SOCKDIR" =~ [[:space:],\'\"\\] ]]; then
        PG_SOCKDIR="/tmp/shikaku-pg-$(_pg_hash).run"
    fi

    if [[ "$create" == create ]]; then
        _pg_make_dir "$PG_ROOT"
        _pg_make_dir "$PG_SOCKDIR"
    fi
}

# A directory owned by the cluster's owner (mode 755; PGDATA itself is 700).
_pg_make_dir() {
    local dir="$1"
    if [[ -e "$dir" && ! -d "$dir" ]]; then
        die "$dir exists and is not a directory"
    fi
    mkdir -p "$dir"
    if [[ -n "$PG_OS_USER" ]]; then
        chown "$PG_OS_USER:" "$dir"
    fi
    chmod 755 "$dir"
}

# --- state -----------------------------------------------------------------------

# Prints the postmaster's pid and returns 0 when our cluster is running.
pg_local_pid() {
    local pidfile="$PG_DATA/postmaster.pid" pid cwd
    [[ -f "$pidfile" ]] || return 1
    pid="$(head -n1 "$pidfile" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -d "/proc/$pid" ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres* ]] || return 1
    # The postmaster's working directory is its data directory; this tells a
    # reused pid (after a reboot, or in a container) from our server.
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    if [[ -n "$cwd" && "$cwd" != "$(readlink -f "$PG_DATA")" ]]; then
        return 1
    fi
    printf '%s\n' "$pid"
}

# Removes a postmaster.pid left behind by a server that is gone.
_pg_clear_stale_pid() {
    local pidfile="$PG_DATA/postmaster.pid"
    if [[ -f "$pidfile" ]] && ! pg_local_pid >/dev/null; then
        warn "removing stale $pidfile (pid $(head -n1 "$pidfile" 2>/dev/null || echo '?') is not our server)"
        rm -f "$pidfile"
    fi
}

_pg_port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The port: the running server's, else SHIKAKU_PG_PORT, else the one
# recorded at the last start, else the default.
pg_local_port() {
    local running
    if pg_local_pid >/dev/null 2>&1; then
        running="$(sed -n 4p "$PG_DATA/postmaster.pid")"
        if [[ "$running" =~ ^[0-9]+$ ]]; then
            if [[ -n "${SHIKAKU_PG_PORT:-}" && "$SHIKAKU_PG_PORT" != "$running" ]]; then
                warn "the project-local PostgreSQL runs on port $running, not SHIKAKU_PG_PORT=$SHIKAKU_PG_PORT; restart it (scripts/db stop; scripts/db start) to move it"
            fi
            printf '%s\n' "$running"
            return 0
        fi
    fi
    if [[ -n "${SHIKAKU_PG_PORT:-}" ]]; then
        [[ "$SHIKAKU_PG_PORT" =~ ^[0-9]+$ ]] || die "SHIKAKU_PG_PORT='$SHIKAKU_PG_PORT' is not a port number"
        printf '%s\n' "$SHIKAKU_PG_PORT"
    elif [[ -f "${PG_PORT_FILE:-}" ]] && [[ "$(cat "$PG_PORT_FILE")" =~ ^[0-9]+$ ]]; then
        cat "$PG_PORT_FILE"
    else
        printf '%s\n' "$PG_DEFAULT_PORT"
    fi
}

# Picks the port for a start: when the usual one is taken by something else
# and SHIKAKU_PG_PORT was not given, the next free one (so that a leftover
# server of another checkout does not break this one).
_pg_choose_port() {
    local port p
    port="$(pg_local_port)"
    if _pg_port_busy "$port"; then
        [[ -z "${SHIKAKU_PG_PORT:-}" ]] \
            || die "port $port on 127.0.0.1 is in use by another program; choose another SHIKAKU_PG_PORT"
        for ((p = PG_DEFAULT_PORT; p < PG_DEFAULT_PORT + 50; p++)); do
            if ! _pg_port_busy "$p"; then
                warn "port $port on 127.0.0.1 is in use by another program; using $p (set SHIKAKU_PG_PORT to choose)"
                port="$p"
                break
            fi
        done
        _pg_port_busy "$port" && die "no free port found in $PG_DEFAULT_PORT..$((PG_DEFAULT_PORT + 49)); set SHIKAKU_PG_PORT"
    fi
    printf '%s\n' "$port" >"$PG_PORT_FILE"
    PG_PORT="$port"
}

pg_local_url() {
    local db="${1:-$(pg_db_name)}"
    printf 'postgres://%s@127.0.0.1:%s/%s\n' "$PG_SUPERUSER" "$(pg_local_port)" "$db"
}

# --- init, start, stop -----------------------------------------------------------------

_pg_initdb() {
    local locale=C initlog="$PG_ROOT/initdb.log"
    if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then
        locale=C.UTF-8
    else
        warn "locale C.UTF-8 is not available; initializing with locale C"
    fi
    info "initdb: PostgreSQL $PG_MAJOR cluster in $PG_DATA (owner ${PG_OS_USER:-$(id -un)}, locale $locale)"
    : >"$initlog"
    [[ -z "$PG_OS_USER" ]] || chown "$PG_OS_USER:" "$initlog"
    if ! pg_as_owner "$PG_BINDIR/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" --auth=trust \
        -E UTF8 --locale="$locale" >"$initlog" 2>&1; then
        cat "$initlog" >&2
        die "initdb failed (log above, also in $initlog)"
    fi
    printf "\n# Project settings (scripts/lib/postgres.sh rewrites shikaku.conf at every start).\ninclude 'shikaku.conf'\n" \
        >>"$PG_DATA/postgresql.conf"
}

# Rewritten at every start, so a new port or socket directory takes effect.
_pg_write_conf() {
    local conf="$PG_DATA/shikaku.conf"
    cat >"$conf" <<EOF
# Written by scripts/lib/postgres.sh at every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKDIR'
max_connections = 200
shared_buffers = 512MB
work_mem = 32MB
maintenance_work_mem = 512MB
effective_cache_size = 8GB
# Durability as in production: benchmarks measure the real thing.
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 4GB
checkpoint_timeout = 15min
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 5s
EOF
    [[ -z "$PG_OS_USER" ]] || chown "$PG_OS_USER:" "$conf"
    chmod 600 "$conf"
}

# Starts the project-local cluster (initializing it first) and makes the
# application database. Idempotent.
pg_local_start() {
    local pid out version
    pg_local_layout create
    if [[ -f "$PG_DATA/PG_VERSION" ]]; then
        pg_find_bindir "$(cat "$PG_DATA/PG_VERSION")"
    else
        pg_find_bindir
    fi
    pg_find_client

    if pid="$(pg_local_pid)"; then
        PG_PORT="$(pg_local_port)"
        info "project-local PostgreSQL already running (pid $pid, 127.0.0.1:$PG_PORT, $PG_DATA)"
    else
        _pg_clear_stale_pid
        [[ -f "$PG_DATA/PG_VERSION" ]] || _pg_initdb
        _pg_choose_port
        _pg_write_conf
        info "starting project-local PostgreSQL $PG_MAJOR on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
        if ! out="$(pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 120 start 2>&1)"; then
            printf '%s\n' "$out" >&2
            echo "--- last lines of $PG_LOG ---" >&2
            tail -n 30 "$PG_LOG" >&2 || true
            die "PostgreSQL did not start"
        fi
        # shellcheck disable=SC2034 # read by scripts/test
        PG_STARTED_BY_US=1
    fi

    _pg_ensure_database "$(pg_db_name)"
    version="$(pg_query "$(pg_local_url postgres)" 'show server_version')"
    info "ready: $(pg_local_url) (PostgreSQL $version)"
}

_pg_ensure_database() {
    local db="$1" admin
    admin="$(pg_local_url postgres)"
    if [[ "$(pg_query "$admin" "select count(*) from pg_database where datname = '$db'")" != 1 ]]; then
        info "creating database $db"
        pg_query "$admin" "create database \"$db\"" >/dev/null || die "create database $db failed"
    fi
}

# Stops the project-local cluster. Idempotent.
pg_local_stop() {
    local pid out
    pg_local_layout
    if ! pid="$(pg_local_pid)"; then
        if [[ -f "$PG_DATA/postmaster.pid" ]]; then
            _pg_clear_stale_pid
        fi
        info "project-local PostgreSQL is not running ($PG_DATA)"
        return 0
    fi
    pg_find_bindir "$(cat "$PG_DATA/PG_VERSION")"
    info "stopping project-local PostgreSQL (pid $pid)"
    if ! out="$(pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w -t 120 stop 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "pg_ctl stop failed (log: $PG_LOG)"
    fi
    info "stopped"
}

# --- the entry point for the other scripts -----------------------------------------------

# Uses DATABASE_URL when set (it must be reachable), else starts the
# project-local cluster; exports DATABASE_URL either way. Sets
# PG_STARTED_BY_US=1 when this call started the local server.
ensure_postgres() {
    if pg_external; then
        pg_check_url "$DATABASE_URL"
        info "using DATABASE_URL: $(pg_redact_url "$DATABASE_URL")"
    else
        pg_local_start
        DATABASE_URL="$(pg_local_url)"
    fi
    export DATABASE_URL
}
