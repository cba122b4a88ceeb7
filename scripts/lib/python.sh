# shellcheck shell=bash
# Python tools the tests use from the package registries, each in its own virtual environment
# under target/venv/ (outside git, rebuilt when its requirements file changes):
#   fhir  fhir.resources (FHIR R4 models) for scripts/lib/fhir_validate.py
#   fuzz  schemathesis for scripts/fuzz-api
# Source after common.sh.

# ensure_venv NAME: prints the venv's directory, creating or updating it from
# scripts/requirements/NAME.txt first.
ensure_venv() {
    local name="$1" req="$REPO/scripts/requirements/$1.txt" dir="$REPO/target/venv/$1" stamp
    [[ -f "$req" ]] || die "no requirements file $req"
    ensure_apt_packages python3 python3-venv
    stamp="$(sha256sum "$req" | cut -c1-16)"
    if [[ ! -x "$dir/bin/python" || "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]]; then
        info "python venv $name: pip install -r scripts/requirements/$name.txt"
        rm -rf "$dir"
        python3 -m venv "$dir" >&2 || die "python3 -m venv $dir failed"
        "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 \
            || die "pip install -r $req failed"
        printf '%s\n' "$stamp" >"$dir/.stamp"
    fi
    printf '%s\n' "$dir"
}
