# shellcheck shell=bash
# Shared helpers for the scripts in scripts/. Source it; do not run it.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Provides: REPO (the repository root), info/warn/die, is_root,
# ensure_apt_packages, ensure_rust, ensure_build_deps, ensure_postgres
# (from postgres.sh, which this file sources) and register_insurers.

if [[ -n "${_SHIKAKU_COMMON_SH:-}" ]]; then
    return 0
fi
_SHIKAKU_COMMON_SH=1

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
export REPO

# --- logging ---------------------------------------------------------------

_shikaku_prog="$(basename "$0")"

# SHIKAKU_QUIET=1 silences info (not warnings or errors).
info() { [[ -n "${SHIKAKU_QUIET:-}" ]] || printf '[%s] %s\n' "$_shikaku_prog" "$*" >&2; }
warn() { printf '[%s] warning: %s\n' "$_shikaku_prog" "$*" >&2; }
die() {
    printf '[%s] error: %s\n' "$_shikaku_prog" "$*" >&2
    exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# --- .env ----------------------------------------------------------------------

# Loads $REPO/.env (a copy of .env.sample) when present: plain KEY=VALUE
# lines, optionally quoted; comments and blank lines skipped. Variables
# already set in the environment win. Skipped in CI.
load_dotenv() {
    local file="$REPO/.env" line key value
    [[ -f "$file" && -z "${CI:-}" ]] || return 0
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line%$'\r'}"
        [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
        key="${BASH_REMATCH[2]}"
        value="${BASH_REMATCH[3]}"
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then
            value="${BASH_REMATCH[1]}"
        fi
        if [[ -z "${!key+set}" ]]; then
            export "$key=$value"
        fi
    done <"$file"
}
load_dotenv

# --- Debian packages ---------------------------------------------------------

_SHIKAKU_APT_UPDATED=""

# True when the Debian package is installed.
apt_package_installed() {
    local status
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" || return 1
    [[ "$status" == "install ok installed" ]]
}

# ensure_apt_packages PKG...
# Installs the missing ones with apt-get when root (running `apt-get update`
# once per process first); otherwise prints the exact command and exits 1.
ensure_apt_packages() {
    local pkg missing=()
    if ! command -v dpkg-query >/dev/null 2>&1; then
        # Not Debian: we cannot check. Say what we would need and carry on;
        # the step that needs them fails with its own message.
        warn "not a Debian system; make sure these (Debian names) are installed: $*"
        return 0
    fi
    for pkg in "$@"; do
        apt_package_installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0

    if ! is_root; then
        printf '[%s] error: missing Debian packages: %s\n' "$_shikaku_prog" "${missing[*]}" >&2
        printf '[%s] install them with:\n\n    sudo apt-get install -y %s\n\n' \
            "$_shikaku_prog" "${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z "$_SHIKAKU_APT_UPDATED" ]]; then
        info "apt-get update"
        apt-get update -qq || die "apt-get update failed"
        _SHIKAKU_APT_UPDATED=1
    fi
    info "apt-get install ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# --- Rust --------------------------------------------------------------------

# cargo present (or die with instructions), plus the rustfmt and clippy
# components (added with rustup when missing).
ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
        PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
        export PATH
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        die "cargo not found. Install the Rust toolchain with rustup (https://rustup.rs):
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --component rustfmt,clippy
then open a new shell (or: . \"\$HOME/.cargo/env\") and run this script again."
    fi
    local want=()
    cargo fmt --version >/dev/null 2>&1 || want+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || want+=(clippy)
    if [[ ${#want[@]} -gt 0 ]]; then
        command -v rustup >/dev/null 2>&1 \
            || die "cargo has no ${want[*]} and rustup is not available to add them; install them with your Rust distribution"
        info "rustup component add ${want[*]}"
        rustup component add "${want[@]}" || die "rustup component add ${want[*]} failed"
    fi
}

# C toolchain and libpq for diesel's pq-sys.
ensure_build_deps() {
    ensure_apt_packages gcc libc6-dev pkg-config libpq-dev curl
}

# --- shikaku CLI helpers -------------------------------------------------------

# csv_split_line LINE -> sets the global array CSV_FIELDS.
# Handles double-quoted fields with "" escapes; no embedded newlines.
csv_split_line() {
    local line="$1" field="" ch i quoted=0 n=${#1}
    CSV_FIELDS=()
    for ((i = 0; i < n; i++)); do
        ch="${line:i:1}"
        if ((quoted)); then
            if [[ "$ch" == '"' ]]; then
                if [[ "${line:i+1:1}" == '"' ]]; then
                    field+='"'
                    ((i++)) || true
                else
                    quoted=0
                fi
            else
                field+="$ch"
            fi
        elif [[ "$ch" == '"' ]]; then
            quoted=1
        elif [[ "$ch" == ',' ]]; then
            CSV_FIELDS+=("$field")
            field=""
        else
            field+="$ch"
        fi
    done
    CSV_FIELDS+=("$field")
}

# register_insurers BIN CSV
# CSV columns: insurer_number,name,kind (header line skipped). `insurers add`
# updates an existing insurer, so this is idempotent.
register_insurers() {
    local bin="$1" csv="$2" line count=0 lineno=0
    [[ -f "$csv" ]] || die "insurer file not found: $csv"
    while IFS= read -r line || [[ -n "$line" ]]; do
        lineno=$((lineno + 1))
        line="${line%$'\r'}"
        [[ $lineno -eq 1 ]] && continue # header
        [[ -z "$line" ]] && continue
        csv_split_line "$line"
        [[ ${#CSV_FIELDS[@]} -eq 3 ]] \
            || die "$csv:$lineno: expected 3 columns (insurer_number,name,kind), got ${#CSV_FIELDS[@]}"
        "$bin" insurers add "${CSV_FIELDS[0]}" --name "${CSV_FIELDS[1]}" --kind "${CSV_FIELDS[2]}" </dev/null \
            || die "$csv:$lineno: shikaku insurers add ${CSV_FIELDS[0]} failed"
        count=$((count + 1))
    done <"$csv"
    info "registered $count insurers from ${csv#"$REPO"/}"
}

# Number of data lines (lines after the header) in a CSV file.
csv_data_rows() {
    local lines
    lines="$(wc -l <"$1")"
    echo $((lines > 0 ? lines - 1 : 0))
}

# --- PostgreSQL ----------------------------------------------------------------

# shellcheck source=scripts/lib/postgres.sh
. "$REPO/scripts/lib/postgres.sh"
