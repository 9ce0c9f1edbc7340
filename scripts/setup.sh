#!/usr/bin/env bash
# Installs what Shoal needs on a Debian or Ubuntu machine with Node.js 20+, then builds it:
#   - nats-server (Debian's package), when it is not already installed;
#   - Go and the official NATS client for Go (golang-go, golang-github-nats-io-go-nats-dev), when
#     missing: the Go example (examples/go) and its test build against them offline;
#   - systemd-analyze (Debian's systemd), when missing: a test verifies the shipped systemd unit;
#   - faketime (libfaketime), when missing: the clock-skew test runs a node on a fast or slow clock;
#   - iproute2, when `ip` is missing: the partition test makes network namespaces with it;
#   - promtool (Debian's prometheus package), when missing: a test checks and unit-tests the alert
#     rules in deploy/prometheus; the Prometheus server the package also installs is stopped and
#     disabled when setup installed it;
#   - yamllint (Debian's yamllint), when missing: a test lints every YAML file of the repository;
#   - bsdutils, when `script` is missing: the console's tests drive it through a pseudo-terminal;
#   - with --bench: Debian's Fashion-MNIST dataset too (dataset-fashion-mnist), for the benchmarks;
#   - g++, make and python3, when missing: node-gyp compiles hnswlib-node and Shoal's own HNSW
#     addon (native/, binding.gyp) with them;
#   - the npm packages (npm ci, which also builds the addon), when node_modules is missing or older
#     than package-lock.json; else the addon alone (npm run build:native) when it is missing or
#     older than its sources;
#   - the TypeScript build.
# Safe to run again: it skips what is already there. Without apt-get (or root or sudo) it stops
# and prints the exact command to run.
set -euo pipefail
cd "$(dirname "$0")/.."

want_bench=0
for arg in "$@"; do
  case "$arg" in
    --bench) want_bench=1 ;;
    *) echo "usage: bash scripts/setup.sh [--bench]" >&2; exit 2 ;;
  esac
done

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "Shoal needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

packages=()
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ] && [ -z "${NATS_SERVER_BIN:-}" ]; then
  packages+=(nats-server)
fi
if ! command -v go >/dev/null 2>&1; then
  packages+=(golang-go)
fi
if [ ! -f /usr/share/gocode/src/github.com/nats-io/nats.go/nats.go ]; then
  packages+=(golang-github-nats-io-go-nats-dev)
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
  packages+=(systemd)
fi
if [ ! -f /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] && ! command -v faketime >/dev/null 2>&1; then
  packages+=(faketime)
fi
if ! command -v ip >/dev/null 2>&1; then
  packages+=(iproute2)
fi
if ! command -v promtool >/dev/null 2>&1; then
  packages+=(prometheus)
fi
if ! command -v yamllint >/dev/null 2>&1; then
  packages+=(yamllint)
fi
if ! command -v script >/dev/null 2>&1; then
  packages+=(bsdutils)
fi
if ! command -v g++ >/dev/null 2>&1; then
  packages+=(g++)
fi
if ! command -v make >/dev/null 2>&1; then
  packages+=(make)
fi
if ! command -v python3 >/dev/null 2>&1; then
  packages+=(python3)
fi
if [ "$want_bench" = 1 ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  packages+=(dataset-fashion-mnist)
fi

if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "Shoal needs: ${packages[*]}. Run as root: apt-get install -y ${packages[*]}" >&2; exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Shoal needs: ${packages[*]}, and this machine has no apt-get." >&2
    case " ${packages[*]} " in *" nats-server "*)
      echo "Install nats-server from https://github.com/nats-io/nats-server/releases and put it on the PATH (or set NATS_SERVER_BIN)." >&2 ;;
    esac
    case " ${packages[*]} " in *" golang-"*)
      echo "The Go example's test builds offline against Debian's packaged Go and nats.go (/usr/share/gocode);" >&2
      echo "elsewhere, examples/go/README.md says how to build the example with Go modules." >&2 ;;
    esac
    exit 1
  fi
  echo "setup: installing ${packages[*]} with apt-get" >&2
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
  # promtool is what the tests need, not a Prometheus server listening on :9090
  case " ${packages[*]} " in *" prometheus "*)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi ;;
  esac
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
elif [ ! -f build/Release/shoal_hnsw.node ] || [ native/hnsw-graph.cc -nt build/Release/shoal_hnsw.node ] || [ binding.gyp -nt build/Release/shoal_hnsw.node ]; then
  echo "setup: building the HNSW addon (npm run build:native)" >&2
  npm run --silent build:native >/dev/null
fi

npm run --silent build
echo "setup: ready ($(nats-server --version 2>/dev/null || /usr/sbin/nats-server --version), node $(node --version), $(go version 2>/dev/null | cut -d' ' -f3)); in this directory, \`npx shoal --help\` lists the commands" >&2
