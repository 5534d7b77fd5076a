# Sourced by scripts/test, scripts/demo and scripts/release: makes sure the
# system packages the emulated cluster and the peers need are present,
# installing them with apt-get when running as root, or stopping with a clear
# message otherwise.

PG_MAJOR=${PG_MAJOR:-15}
REQUIRED_PACKAGES=(
    "postgresql-$PG_MAJOR"          # servers of the emulated cluster
    "postgresql-client-$PG_MAJOR"   # psql, used to set the cluster up
    "postgresql-server-dev-$PG_MAJOR" # PGXS and headers for the gpemu extension
    libkrb5-dev                     # needed by the server headers
    gcc make
    prometheus                      # promtool and the end-to-end Prometheus
    prometheus-alertmanager
    chromium                        # the status page's browser test
)

die() {
    echo "error: $*" >&2
    exit 1
}

ensure_packages() {
    install_missing "${REQUIRED_PACKAGES[@]}"
    export PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
    [ -x "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config) || die "pg_config not found"
    command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] \
        || die "cargo not found: install the stable Rust toolchain (https://rustup.rs)"
    command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
}

# Installs those of the given Debian packages that are missing (as root), or
# stops naming them.
install_missing() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
        fi
        echo "installing: ${missing[*]}" >&2
        apt-get update -q >&2 || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
            || die "apt-get install ${missing[*]} failed"
    fi
}
