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
#        $REPO/.pgdata/replica/      an optional streaming standby of the
#                                    primary (scripts/db replica; see below)
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

# pg_local_pid [DATADIR]: prints the postmaster's pid and returns 0 when our
# cluster (or the one in DATADIR) is running.
pg_local_pid() {
    local data="${1:-$PG_DATA}" pid cwd
    local pidfile="$data/postmaster.pid"
    [[ -f "$pidfile" ]] || return 1
    pid="$(head -n1 "$pidfile" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -d "/proc/$pid" ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres* ]] || return 1
    # The postmaster's working directory is its data directory; this tells a
    # reused pid (after a reboot, or in a container) from our server.
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    if [[ -n "$cwd" && "$cwd" != "$(readlink -f "$data")" ]]; then
        return 1
    fi
    printf '%s\n' "$pid"
}

# _pg_clear_stale_pid [DATADIR]: removes a postmaster.pid left behind by a
# server that is gone.
_pg_clear_stale_pid() {
    local data="${1:-$PG_DATA}"
    local pidfile="$data/postmaster.pid"
    if [[ -f "$pidfile" ]] && ! pg_local_pid "$data" >/dev/null; then
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

# _pg_pick_port PORT VAR DEFAULT WHO: prints PORT, or, when another program
# holds it and the variable VAR was not set, the next free one from DEFAULT
# (so that a leftover server of another checkout does not break this one).
_pg_pick_port() {
    local port="$1" var="$2" default="$3" who="$4" p
    if _pg_port_busy "$port"; then
        [[ -z "${!var:-}" ]] \
            || die "port $port on 127.0.0.1 is in use by another program; choose another $var"
        for ((p = default; p < default + 50; p++)); do
            if ! _pg_port_busy "$p"; then
                warn "port $port on 127.0.0.1 is in use by another program; $who uses $p (set $var to choose)"
                port="$p"
                break
            fi
        done
        _pg_port_busy "$port" && die "no free port found in $default..$((default + 49)); set $var"
    fi
    printf '%s\n' "$port"
}

# Sets PG_PORT for a start (_pg_pick_port) and records it.
_pg_choose_port() {
    local port
    port="$(_pg_pick_port "$(pg_local_port)" SHIKAKU_PG_PORT "$PG_DEFAULT_PORT" "the project-local PostgreSQL")"
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

# _pg_write_conf [DATADIR PORT SOCKDIR] (default: the project-local cluster's).
# Rewritten at every start, so a new port or socket directory takes effect.
_pg_write_conf() {
    local data="${1:-$PG_DATA}" port="${2:-$PG_PORT}" sockdir="${3:-$PG_SOCKDIR}"
    local conf="$data/shikaku.conf"
    cat >"$conf" <<EOF
# Written by scripts/lib/postgres.sh at every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
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

# Stops the project-local cluster, and first its streaming standby (scripts/db
# replica) when that runs. Idempotent.
pg_local_stop() {
    local pid out
    pg_replica_stop quiet
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

# --- streaming standby (scripts/db replica) ---------------------------------------------
#
# A hot standby of the primary (DATABASE_URL when set, else the project-local
# cluster), copied with pg_basebackup and kept current by streaming
# replication through the physical slot shikaku_replica on the primary:
#     $PG_ROOT/replica/data          its PGDATA (standby.signal, primary_conninfo)
#     $PG_ROOT/replica/run           its Unix socket directory
#     $PG_ROOT/replica/postgres.log  its log
#     $PG_ROOT/replica/port          the port it was last started on
# listening on 127.0.0.1:${SHIKAKU_PG_REPLICA_PORT:-54339} only, run by the
# project-local cluster's owner. PG_ROOT is the project-local one even when
# DATABASE_URL is set. Read-only, and behind the primary by its replay lag.

PG_REPLICA_DEFAULT_PORT=54339
PG_REPLICA_SLOT=shikaku_replica

# pg_replica_layout [create]: pg_local_layout, then PG_R_ROOT, PG_R_DATA,
# PG_R_SOCKDIR, PG_R_LOG and PG_R_PORT_FILE; PG_OS_USER is the standby's
# owner when it exists. With `create`, makes its directories (not PGDATA:
# pg_basebackup does).
pg_replica_layout() {
    local create="${1:-}" tmp_root
    tmp_root="/tmp/shikaku-pg-$(_pg_hash)"
    pg_local_layout "$create"
    PG_R_ROOT="$PG_ROOT/replica"
    if [[ ! -d "$PG_R_ROOT/data" && -f "$tmp_root/replica/data/PG_VERSION" ]]; then
        PG_R_ROOT="$tmp_root/replica"
    fi
    PG_R_DATA="$PG_R_ROOT/data"
    PG_R_LOG="$PG_R_ROOT/postgres.log"
    PG_R_PORT_FILE="$PG_R_ROOT/port"
    PG_R_SOCKDIR="$PG_R_ROOT/run"
    # As in pg_local_layout: short enough for sun_path, no list separators.
    if ((${#PG_R_SOCKDIR} > 88)) || [[ "$PG_R_SOCKDIR" =~ [[:space:],\'\"\\] ]]; then
        PG_R_SOCKDIR="$tmp_root-replica.run"
    fi

    if [[ -d "$PG_R_DATA" ]]; then
        if is_root; then
            PG_OS_USER="$(stat -c %U "$PG_R_DATA")"
            [[ "$PG_OS_USER" != root ]] \
                || die "$PG_R_DATA belongs to root; PostgreSQL cannot run as root. Run scripts/db replica remove, then scripts/db replica start"
        elif [[ ! -O "$PG_R_DATA" ]]; then
            die "$PG_R_DATA belongs to $(stat -c %U "$PG_R_DATA"), not to you; run as that user (or root)"
        fi
    fi

    if [[ "$create" == create ]]; then
        _pg_make_dir "$PG_R_ROOT"
        _pg_make_dir "$PG_R_SOCKDIR"
    fi
}

# The standby's port: the running standby's, else SHIKAKU_PG_REPLICA_PORT,
# else the one recorded at its last start, else the default.
pg_replica_port() {
    local running
    if pg_local_pid "$PG_R_DATA" >/dev/null 2>&1; then
        running="$(sed -n 4p "$PG_R_DATA/postmaster.pid")"
        if [[ "$running" =~ ^[0-9]+$ ]]; then
            if [[ -n "${SHIKAKU_PG_REPLICA_PORT:-}" && "$SHIKAKU_PG_REPLICA_PORT" != "$running" ]]; then
                warn "the standby runs on port $running, not SHIKAKU_PG_REPLICA_PORT=$SHIKAKU_PG_REPLICA_PORT; restart it (scripts/db replica stop; scripts/db replica start) to move it"
            fi
            printf '%s\n' "$running"
            return 0
        fi
    fi
    if [[ -n "${SHIKAKU_PG_REPLICA_PORT:-}" ]]; then
        [[ "$SHIKAKU_PG_REPLICA_PORT" =~ ^[0-9]+$ ]] \
            || die "SHIKAKU_PG_REPLICA_PORT='$SHIKAKU_PG_REPLICA_PORT' is not a port number"
        printf '%s\n' "$SHIKAKU_PG_REPLICA_PORT"
    elif [[ -f "$PG_R_PORT_FILE" ]] && [[ "$(cat "$PG_R_PORT_FILE")" =~ ^[0-9]+$ ]]; then
        cat "$PG_R_PORT_FILE"
    else
        printf '%s\n' "$PG_REPLICA_DEFAULT_PORT"
    fi
}

# Sets PG_R_PORT for a start (_pg_pick_port) and records it.
_pg_replica_choose_port() {
    local port
    port="$(_pg_pick_port "$(pg_replica_port)" SHIKAKU_PG_REPLICA_PORT "$PG_REPLICA_DEFAULT_PORT" "the standby")"
    printf '%s\n' "$port" >"$PG_R_PORT_FILE"
    PG_R_PORT="$port"
}

# The standby's URL: the primary's user and database on 127.0.0.1 and the
# standby's port (for DATABASE_URL: its user, with any password, and its
# database; query parameters such as sslmode are dropped: the standby serves
# the loopback only, without SSL).
pg_replica_url() {
    local port
    port="$(pg_replica_port)"
    if pg_external; then
        [[ "$DATABASE_URL" =~ ^(postgres(ql)?)://([^@/?]*@)?[^/?]*(/([^?]*))?(\?.*)?$ ]] \
            || die "cannot parse DATABASE_URL (want postgres://user@host:port/db): $(pg_redact_url "$DATABASE_URL")"
        printf '%s://%s127.0.0.1:%s/%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]}" "$port" "${BASH_REMATCH[5]}"
    else
        printf 'postgres://%s@127.0.0.1:%s/%s\n' "$PG_SUPERUSER" "$port" "$(pg_db_name)"
    fi
}

# The URL the scripts query the standby on (for the project-local primary:
# the postgres database, always there).
_pg_replica_admin_url() {
    if pg_external; then
        pg_replica_url
    else
        pg_url_with_db "$(pg_replica_url)" postgres
    fi
}

# Prints the primary's URL when it is reachable (never starts it): DATABASE_URL,
# or the running project-local cluster. Call after pg_replica_layout.
_pg_replica_primary_url() {
    local url
    if pg_external; then
        url="$DATABASE_URL"
    elif pg_local_pid >/dev/null 2>&1; then
        url="$(pg_local_url postgres)"
    else
        return 1
    fi
    pg_query "$url" 'select 1' >/dev/null 2>&1 || return 1
    printf '%s\n' "$url"
}

# _pg_replica_slot_state URL: prints `absent`, `inactive` or `active PID` for
# the slot shikaku_replica on the primary at URL.
_pg_replica_slot_state() {
    local out
    out="$(pg_query "$1" "select coalesce(active_pid::text, 'inactive') from pg_replication_slots where slot_name = '$PG_REPLICA_SLOT'")" \
        || die "cannot read pg_replication_slots on the primary $(pg_redact_url "$1")"
    if [[ -z "$out" ]]; then
        echo absent
    elif [[ "$out" == inactive ]]; then
        echo inactive
    else
        echo "active $out"
    fi
}

# _pg_replica_drop_slot URL: drops the slot on the primary once no standby
# streams from it (waiting up to 15 s for a walsender that is going away).
# Returns 1, with a warning, when a standby still uses it.
_pg_replica_drop_slot() {
    local url="$1" state i
    for ((i = 0; i < 15; i++)); do
        state="$(_pg_replica_slot_state "$url")"
        case "$state" in
        absent) return 0 ;;
        inactive)
            pg_query "$url" "select pg_drop_replication_slot(slot_name) from pg_replication_slots
                where slot_name = '$PG_REPLICA_SLOT' and not active" >/dev/null \
                || die "could not drop the replication slot $PG_REPLICA_SLOT on the primary $(pg_redact_url "$url")"
            if [[ "$(_pg_replica_slot_state "$url")" == absent ]]; then
                info "dropped the replication slot $PG_REPLICA_SLOT on the primary"
                return 0
            fi
            ;;
        esac
        sleep 1
    done
    warn "the replication slot $PG_REPLICA_SLOT on the primary is in use by another standby (walsender pid ${state#active }); left alone"
    return 1
}

# _pg_replica_check_primary URL: dies, saying what to change, unless the
# primary can feed a standby through a slot and URL's role may replicate.
_pg_replica_check_primary() {
    local url="$1" row wal senders slots may_replicate user
    row="$(pg_query "$url" "select current_setting('wal_level'), current_setting('max_wal_senders'),
            current_setting('max_replication_slots'),
            (select rolreplication or rolsuper from pg_roles where rolname = current_user), current_user")" \
        || die "cannot read the settings of the primary $(pg_redact_url "$url")"
    IFS='|' read -r wal senders slots may_replicate user <<<"$row"
    [[ "$wal" != minimal ]] \
        || die "the primary runs with wal_level = minimal, which cannot feed a standby: set wal_level = replica (the default) and max_wal_senders = 10 in its postgresql.conf, and restart it"
    [[ "$senders" != 0 ]] \
        || die "the primary has max_wal_senders = 0 (no replication connections): set it to 10 (the default) in its postgresql.conf, and restart it"
    [[ "$slots" != 0 ]] \
        || die "the primary has max_replication_slots = 0: set it to 10 (the default) in its postgresql.conf, and restart it"
    [[ "$may_replicate" == t ]] \
        || die "role $user may not replicate: as a superuser, ALTER ROLE \"$user\" REPLICATION on the primary, or put a superuser in DATABASE_URL"
}

# Prints pg_basebackup's output OUT and dies, saying what to change when the
# primary refused replication.
_pg_replica_basebackup_failed() {
    local out="$1"
    printf '%s\n' "$out" >&2
    if [[ "$out" == *"pg_hba.conf"* ]]; then
        die "the primary refuses replication connections from this host: add a line such as
    host  replication  <user>  127.0.0.1/32  scram-sha-256
to its pg_hba.conf (with the address this host connects from), reload it (select pg_reload_conf()), and run scripts/db replica start again"
    fi
    if [[ "$out" == *"number of requested standby connections exceeds"* || "$out" == *"max_wal_senders"* ]]; then
        die "the primary has no free WAL sender: raise max_wal_senders in its postgresql.conf and restart it"
    fi
    if [[ "$out" == *"must be superuser or replication role"* || "$out" == *"permission denied to start WAL sender"* ]]; then
        die "the role in the primary's URL may not replicate: ALTER ROLE ... REPLICATION on the primary (as a superuser)"
    fi
    die "pg_basebackup failed (output above)"
}

# Makes the copy startable here whatever the primary keeps outside its data
# directory (Debian keeps postgresql.conf and pg_hba.conf in /etc): a
# postgresql.conf that includes shikaku.conf, a pg_hba.conf, a pg_ident.conf.
_pg_replica_prepare_files() {
    local conf="$PG_R_DATA/postgresql.conf" file
    if [[ ! -f "$conf" ]]; then
        printf '# The primary keeps its postgresql.conf outside its data directory;\n# this standby has only its own settings.\n' >"$conf"
    fi
    if ! grep -qE "^[[:space:]]*include[[:space:]]*=?[[:space:]]*'shikaku.conf'" "$conf"; then
        printf "\n# Standby settings (scripts/lib/postgres.sh rewrites shikaku.conf at every scripts/db replica start).\ninclude 'shikaku.conf'\n" \
            >>"$conf"
    fi
    if [[ ! -f "$PG_R_DATA/pg_hba.conf" ]]; then
        printf '# Written by scripts/db replica: the primary keeps its pg_hba.conf elsewhere.\nlocal all all peer\nhost all all 127.0.0.1/32 md5\n' \
            >"$PG_R_DATA/pg_hba.conf"
    fi
    [[ -f "$PG_R_DATA/pg_ident.conf" ]] || : >"$PG_R_DATA/pg_ident.conf"
    for file in "$conf" "$PG_R_DATA/pg_hba.conf" "$PG_R_DATA/pg_ident.conf"; do
        [[ -z "$PG_OS_USER" ]] || chown "$PG_OS_USER:" "$file"
        chmod 600 "$file"
    done
}

# The standby's shikaku.conf: the project settings with the standby's port and
# socket directory, then the standby's own. Rewritten at every start.
_pg_replica_write_conf() {
    local data_q="${PG_R_DATA//\'/\'\'}"
    _pg_write_conf "$PG_R_DATA" "$PG_R_PORT" "$PG_R_SOCKDIR"
    cat >>"$PG_R_DATA/shikaku.conf" <<END_OF_CONF
# Streaming standby (scripts/db replica).
cluster_name = 'shikaku-replica'
hot_standby = on
# Long reads (the audit) are not cancelled by vacuum on the primary...
hot_standby_feedback = on
# ...and replay waits at most this long for a read that conflicts with it.
max_standby_streaming_delay = 30s
wal_receiver_status_interval = 1s
# This copy's own files, whatever the primary's configuration names.
hba_file = '$data_q/pg_hba.conf'
ident_file = '$data_q/pg_ident.conf'
logging_collector = off
# Loopback only.
ssl = off
END_OF_CONF
}

# Dies unless PG_R_DATA is a complete standby of PostgreSQL MAJOR.
_pg_replica_check_data() {
    local major="$1" have
    [[ -f "$PG_R_DATA/PG_VERSION" ]] \
        || die "$PG_R_DATA is not a complete copy (an interrupted pg_basebackup?): scripts/db replica remove, then scripts/db replica start"
    have="$(cat "$PG_R_DATA/PG_VERSION")"
    [[ "$have" == "$major" ]] \
        || die "the standby in $PG_R_DATA is PostgreSQL $have but the primary runs $major: scripts/db replica remove, then scripts/db replica start"
    [[ -f "$PG_R_DATA/standby.signal" ]] \
        || die "$PG_R_DATA has no standby.signal: it was promoted and is no longer a standby. scripts/db replica remove, then scripts/db replica start"
}

# Makes the standby (pg_basebackup, the first time), starts it and waits until
# it answers in recovery. Starts the project-local primary first when that is
# the source. Idempotent.
pg_replica_start() {
    local source major pid out admin i state size

    if pg_external; then
        pg_check_url "$DATABASE_URL"
        source="$DATABASE_URL"
        major="$(pg_query "$source" 'show server_version_num')" \
            || die "cannot read the version of the primary $(pg_redact_url "$source")"
        major=$((major / 10000))
        pg_replica_layout create
        if [[ ! -x "/usr/lib/postgresql/$major/bin/postgres" ]]; then
            info "the primary runs PostgreSQL $major; the standby needs that server version here"
        fi
        pg_find_bindir "$major"
        pg_find_client
    else
        pg_local_start
        source="$(pg_local_url postgres)"
        major="$PG_MAJOR"
        pg_replica_layout create
    fi

    if pid="$(pg_local_pid "$PG_R_DATA")"; then
        info "the standby is already running (pid $pid, 127.0.0.1:$(pg_replica_port), $PG_R_DATA)"
        info "ready: $(pg_redact_url "$(pg_replica_url)") (hot standby of $(pg_redact_url "$source"), read-only)"
        return 0
    fi

    _pg_replica_check_primary "$source"
    if [[ ! -e "$PG_R_DATA" ]]; then
        # A slot left by an earlier standby would make -C fail; its WAL is of no use now.
        _pg_replica_drop_slot "$source" \
            || die "another standby streams from the slot $PG_REPLICA_SLOT on the primary $(pg_redact_url "$source"); stop it first"
        size="$(pg_query "$source" 'select pg_size_pretty(sum(pg_database_size(datname))) from pg_database' 2>/dev/null || echo '?')"
        info "pg_basebackup: copying the primary $(pg_redact_url "$source") ($size) into $PG_R_DATA (slot $PG_REPLICA_SLOT)"
        if ! out="$(pg_as_owner "$PG_BINDIR/pg_basebackup" -D "$PG_R_DATA" -d "$source" \
            -X stream -R -C -S "$PG_REPLICA_SLOT" --checkpoint=fast 2>&1)"; then
            _pg_replica_basebackup_failed "$out"
        fi
        chmod 700 "$PG_R_DATA"
        _pg_replica_prepare_files
    else
        _pg_replica_check_data "$major"
        _pg_clear_stale_pid "$PG_R_DATA"
        state="$(_pg_replica_slot_state "$source")"
        for ((i = 0; i < 15; i++)); do
            [[ "$state" == active* ]] || break
            sleep 1 # the walsender of the standby's last run going away
            state="$(_pg_replica_slot_state "$source")"
        done
        case "$state" in
        absent)
            warn "the replication slot $PG_REPLICA_SLOT is gone from the primary; making it again. If the standby cannot catch up (its log says a WAL segment was removed), run scripts/db replica remove, then scripts/db replica start"
            pg_query "$source" "select pg_create_physical_replication_slot('$PG_REPLICA_SLOT', true)" >/dev/null \
                || die "could not create the replication slot $PG_REPLICA_SLOT on the primary"
            ;;
        active*)
            die "another standby streams from the slot $PG_REPLICA_SLOT on the primary (walsender pid ${state#active }); stop it first"
            ;;
        esac
    fi

    _pg_replica_choose_port
    _pg_replica_write_conf
    info "starting the standby (PostgreSQL $major) on 127.0.0.1:$PG_R_PORT (log: $PG_R_LOG)"
    if ! out="$(pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_R_DATA" -l "$PG_R_LOG" -w -t 120 start 2>&1)"; then
        printf '%s\n' "$out" >&2
        echo "--- last lines of $PG_R_LOG ---" >&2
        tail -n 30 "$PG_R_LOG" >&2 || true
        die "the standby did not start"
    fi

    admin="$(_pg_replica_admin_url)"
    for ((i = 0; ; i++)); do
        state="$(pg_query "$admin" 'select pg_is_in_recovery()' 2>/dev/null || true)"
        [[ "$state" != t ]] || break
        [[ "$state" != f ]] \
            || die "the server in $PG_R_DATA is not in recovery: it was promoted and is no longer a standby. scripts/db replica remove, then scripts/db replica start"
        ((i < 60)) || die "the standby does not answer on $(pg_redact_url "$admin") after 60 s (log: $PG_R_LOG)"
        sleep 1
    done
    for ((i = 0; ; i++)); do
        state="$(pg_query "$admin" 'select status from pg_stat_wal_receiver' 2>/dev/null || true)"
        [[ "$state" != streaming ]] || break
        if ((i >= 30)); then
            warn "the standby answers but does not stream from the primary yet (wal receiver: ${state:-none}); last lines of $PG_R_LOG:"
            tail -n 10 "$PG_R_LOG" >&2 || true
            break
        fi
        sleep 1
    done
    info "ready: $(pg_redact_url "$(pg_replica_url)") (hot standby of $(pg_redact_url "$source"), read-only)"
}

# pg_replica_stop [quiet]: stops the standby; no-op if it does not run (with
# `quiet`, a silent one).
pg_replica_stop() {
    local quiet="${1:-}" pid out
    pg_replica_layout
    if ! pid="$(pg_local_pid "$PG_R_DATA")"; then
        if [[ -f "$PG_R_DATA/postmaster.pid" ]]; then
            _pg_clear_stale_pid "$PG_R_DATA"
        fi
        [[ -n "$quiet" ]] || info "the standby is not running ($PG_R_DATA)"
        return 0
    fi
    pg_find_bindir "$(cat "$PG_R_DATA/PG_VERSION")"
    info "stopping the standby (pid $pid)"
    if ! out="$(pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_R_DATA" -m fast -w -t 120 stop 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "pg_ctl stop of the standby failed (log: $PG_R_LOG)"
    fi
    info "the standby stopped"
}

# Stops the standby, deletes its data directory, and drops its slot on the
# primary when the primary is reachable (else WAL piles up there). Idempotent.
pg_replica_remove() {
    local url
    pg_replica_stop
    if [[ -e "$PG_R_DATA" ]]; then
        info "removing $PG_R_DATA"
        rm -rf -- "$PG_R_DATA"
    else
        info "no standby data directory ($PG_R_DATA)"
    fi
    pg_find_client
    if url="$(_pg_replica_primary_url)"; then
        _pg_replica_drop_slot "$url" || true
    elif pg_external; then
        warn "the primary $(pg_redact_url "$DATABASE_URL") is not reachable: its slot $PG_REPLICA_SLOT (if any) keeps WAL there; run scripts/db replica remove again when it is, or drop it there (select pg_drop_replication_slot('$PG_REPLICA_SLOT'))"
    else
        warn "the project-local primary is not running: its slot $PG_REPLICA_SLOT (if any) keeps WAL once it runs; scripts/db start, then scripts/db replica remove drops it"
    fi
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
