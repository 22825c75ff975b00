#!/bin/sh
# Install the Debian data planes the tests run for real (HAProxy, nginx, Prometheus,
# PostgreSQL), but only when one is missing and we are root; otherwise say why their tests
# will skip.
set -eu

# Debian chromium for the Web UI test (tests/test_web_ui.py), which Playwright drives as
# /usr/bin/chromium: Playwright downloads no browser here. Only as root with apt-get.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "note: missing /usr/bin/chromium and not root with apt-get: the Web UI test will skip (as root: apt-get install -y chromium)"
    else
        echo "installing chromium (missing: /usr/bin/chromium)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    fi
fi

# Node.js runs pyright (the type check in `make test`); without it pyright's wrapper would
# download Node from nodejs.org, which CI cannot reach.
if ! command -v node >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "note: missing node and not root with apt-get: pyright cannot run (as root: apt-get install -y nodejs)"
    else
        echo "installing nodejs (missing: node, for pyright)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs
    fi
fi

# PostgreSQL for the evidence store's tests: tests/postgres_fixtures.py initdb's a throwaway
# cluster of its own (Debian keeps initdb in /usr/lib/postgresql/<version>/bin, off PATH).
# The package's default cluster is not needed, so a drop-in turns it off for this install
# and is removed after: with no cluster, the postinst's service start has nothing to start
# and cannot fail (in a container) or leave a server on port 5432.
have_initdb() {
    for initdb in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$initdb" ] && return 0
    done
    command -v initdb >/dev/null 2>&1
}
if ! have_initdb; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "note: missing initdb and not root with apt-get: the PostgreSQL tests will skip (as root: apt-get install -y postgresql)"
    else
        echo "installing postgresql (missing: initdb)"
        apt-get update -qq
        no_cluster=/etc/postgresql-common/createcluster.d/zz-sluicegate-no-main-cluster.conf
        mkdir -p "$(dirname "$no_cluster")"
        echo "create_main_cluster = off" >"$no_cluster"
        status=0
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql || status=$?
        rm -f "$no_cluster"
        rmdir --ignore-fail-on-non-empty "$(dirname "$no_cluster")"
        [ "$status" -eq 0 ] || exit "$status"
    fi
fi

missing=""
for binary in haproxy nginx prometheus; do
    # Debian puts haproxy and nginx in /usr/sbin, which a user's PATH may lack.
    if ! command -v "$binary" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$binary" ]; then
        missing="$missing $binary"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "note: missing$missing and not root: their tests will skip (as root: apt-get install -y haproxy nginx-light prometheus)"
    exit 0
fi
echo "installing data planes (missing:$missing)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx-light prometheus
