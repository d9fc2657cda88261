# Shared by scripts/run and scripts/test. Everything here is idempotent.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${APPLIANCE_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}

say() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# Install the Debian packages that are missing (one apt-get update, only when needed).
ensure_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return
    [[ $(id -u) -eq 0 ]] || die "missing packages (${missing[*]}); run as root or install them"
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A virtualenv with the appliance installed (editable) plus the given extras; rebuilt only
# when setup.cfg changes.
ensure_venv() {
    local extras=$1 stamp
    stamp=$(cat "$REPO/setup.cfg" "$REPO/pyproject.toml" | sha256sum | cut -c1-16)-$extras
    if [[ -f $VENV/.stamp && $(cat "$VENV/.stamp") == "$stamp" ]]; then return; fi
    say "preparing the Python environment in $VENV"
    [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >"$VENV/pip.log" 2>&1 || { cat "$VENV/pip.log" >&2; die "pip upgrade failed"; }
    "$VENV/bin/pip" install -q -e "$REPO${extras:+[$extras]}" >"$VENV/pip.log" 2>&1 \
        || { cat "$VENV/pip.log" >&2; die "pip install failed (log: $VENV/pip.log)"; }
    "$VENV/bin/python" -c 'import appliance, panoramisk, vosk' || die "Python environment incomplete"
    echo "$stamp" >"$VENV/.stamp"
}

# The root Asterisk runs in: / when the host has Asterisk 20+, else the cached sid sandbox.
ensure_asterisk_root() {
    local root
    root=$("$REPO/scripts/asterisk-sandbox" root)
    if [[ $root != / ]]; then
        ensure_apt debootstrap
        root=$("$REPO/scripts/asterisk-sandbox" build)
    fi
    echo "$root"
}

# The environment of a development install: data in ./data, Asterisk in the sandbox root
# unless the host has its own. Shared by scripts/run and scripts/appliance.
dev_env() {
    export APPLIANCE_PATHS_DATA_DIR=${APPLIANCE_PATHS_DATA_DIR:-$REPO/data}
    if [[ -z ${APPLIANCE_ASTERISK_ROOT:-} ]]; then
        APPLIANCE_ASTERISK_ROOT=$("$REPO/scripts/asterisk-sandbox" root)
        export APPLIANCE_ASTERISK_ROOT
    fi
}
