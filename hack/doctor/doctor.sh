#!/usr/bin/env bash
# What the machine needs for `make demo` and `make test`, checked before anything compiles.
#
#   hack/doctor/doctor.sh [--install] [build|demo|test]
#
# Without --install it only reports (make doctor). With --install (make prereqs, which `make demo`,
# `make test` and .ci/run call first) it installs what is missing when it can, as root with
# apt-get (Debian/Ubuntu), and otherwise stops at once naming the one command to run. The list
# below is the only list of the packages make demo and make test need.
#
# DOCTOR_HIDE (space-separated commands or paths) makes those count as missing: tests use it to
# play a machine that lacks them.
set -euo pipefail

install=false
if [ "${1:-}" = "--install" ]; then
  install=true
  shift
fi
target=${1:-test}
case $target in build | demo | test) ;; *)
  echo "usage: hack/doctor/doctor.sh [--install] [build|demo|test]" >&2
  exit 2
  ;;
esac

cd "$(dirname "$0")/../.."

hidden() {
  local w
  for w in ${DOCTOR_HIDE:-}; do [ "$w" = "$1" ] && return 0; done
  return 1
}

# have CMD-or-PATH: an absolute path must be an executable file, a name must be on PATH.
have() {
  hidden "$1" && return 1
  case $1 in
  /*) [ -x "$1" ] ;;
  *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

# The requirements: what must exist, the Debian package that brings it, and why.
# Format: target|thing|package|why. A row of target "demo" is needed by demo and test.
requirements() {
  cat <<'EOF'
build|git|git|the build stamps versions from git
build|curl|curl|the guide's requests and health checks
demo|ip|iproute2|network namespaces of the node and the data-path tests
demo|nft|nftables|kube-proxy's nftables mode and the sidecar's redirect rules
demo|/usr/sbin/runc|runc|containerd runs the node's containers with it
demo|/usr/lib/cni/bridge|containernetworking-plugins|the node's pod network
demo|/usr/lib/cni/host-local|containernetworking-plugins|the node's pod addresses
demo|/usr/lib/cni/loopback|containernetworking-plugins|the pods' loopback
test|chromium|chromium|the browser test drives headless Chromium
test|gcc|gcc|make unit runs the unit tests under the race detector, which needs cgo
EOF
}

wanted() { # wanted ROW-TARGET: is the row needed for $target?
  case $target/$1 in
  build/build | demo/build | demo/demo | test/*) return 0 ;;
  esac
  return 1
}

missing=()   # what is missing, for the report
packages=()  # the packages that bring it, each once
problems=()  # what no package can fix
while IFS='|' read -r rowTarget thing pkg why; do
  wanted "$rowTarget" || continue
  have "$thing" && continue
  missing+=("$thing ($why)")
  [[ " ${packages[*]-} " == *" $pkg "* ]] || packages+=("$pkg")
done < <(requirements)

# Go: the toolchain go.mod asks for, which no Debian package of this release brings.
goWant=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
if ! have go; then
  problems+=("Go $goWant or newer (https://go.dev/dl/, then put its bin directory on PATH)")
else
  goHave=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
  if [ "$(printf '%s\n%s\n' "$goWant" "$goHave" | sort -V | head -1)" != "$goWant" ]; then
    problems+=("Go $goWant or newer: this is go$goHave (https://go.dev/dl/)")
  fi
fi
if [ "$target" != build ] && [ "$(id -u)" != 0 ]; then
  problems+=("root: the local node changes network namespaces, nftables and cgroups (run make as root)")
fi

aptCommand="apt-get update && apt-get install -y ${packages[*]-}"
report() {
  local m
  for m in "${missing[@]}"; do echo "  missing: $m" >&2; done
  for m in "${problems[@]}"; do echo "  needed: $m" >&2; done
}

if ((${#problems[@]})); then
  report
  ((${#packages[@]})) && echo "doctor: run as root: $aptCommand" >&2
  echo "doctor: the machine cannot run 'make $target' yet (see above)" >&2
  exit 1
fi
if ((${#packages[@]} == 0)); then
  echo "doctor: ready for 'make $target'"
  exit 0
fi
if ! $install || [ "$(id -u)" != 0 ] || ! have apt-get; then
  report
  echo "doctor: run as root: $aptCommand" >&2
  exit 1
fi

echo ">> installing ${packages[*]} (apt-get, as the missing pieces above need)"
report
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${packages[@]}" >/dev/null
# What the packages were meant to bring must now be there.
still=()
while IFS='|' read -r rowTarget thing pkg why; do
  wanted "$rowTarget" || continue
  have "$thing" || still+=("$thing")
done < <(requirements)
if ((${#still[@]})); then
  echo "doctor: still missing after apt-get install ${packages[*]}: ${still[*]}" >&2
  exit 1
fi
echo "doctor: installed ${packages[*]}; ready for 'make $target'"
