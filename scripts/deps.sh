#!/usr/bin/env bash
# Installs the OS packages the tests need, when missing, then the npm modules
# of the Node clients in test/node from their lockfile (npm ci), when missing
# or older than the lockfile. Run by `make test` before the Go tests; quick
# (no package manager call) when all are present.
#
# Each line of NEEDS is "COMMAND PACKAGE": when COMMAND is not on the PATH,
# PACKAGE is installed from Debian's packages. Add a line for each new tool.
set -euo pipefail

NEEDS=(
	"prometheus prometheus" # the server the dashboard test scrapes with
	"promtool prometheus"   # checks and unit-tests telemetry/alerts.yaml
	"chromium chromium"     # renders the HTML report headless
	"node nodejs"           # runs the official Node SDKs against dynretry proxy
	"npm npm"               # installs them (test/node)
	"redis-server redis-server" # the shared pacing store's tests and the fleet benchmark
)

missing=()
for need in "${NEEDS[@]}"; do
	read -r cmd pkg <<<"$need"
	if ! command -v "$cmd" >/dev/null 2>&1 && [[ " ${missing[*]-} " != *" $pkg "* ]]; then
		missing+=("$pkg")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "scripts/deps.sh: missing ${missing[*]}: run as root, or install them: apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "scripts/deps.sh: missing ${missing[*]} and no apt-get to install them with" >&2
		exit 1
	fi
	echo "scripts/deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_dir="$(cd "$(dirname "$0")/../test/node" && pwd)"
installed="$node_dir/node_modules/.package-lock.json"
if [ ! -f "$installed" ] || [ "$node_dir/package-lock.json" -nt "$installed" ]; then
	echo "scripts/deps.sh: npm ci in test/node"
	(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
