#!/usr/bin/env bash
# Installs what a fresh machine lacks, in two sets:
#
#   install-deps.sh run    what `make run` and `make demo` use: ffmpeg, and
#                          pocketsphinx with its en-us model and LibriVox test
#                          clips (Debian packages; about a minute)
#   install-deps.sh test   all of that, and what `make test` adds: yt-dlp, flite,
#                          redis-server, sctk for the WER cross-check, prometheus
#                          for promtool, chromium for the dashboard's browser
#                          test, xmllint (libxml2-utils) for the TTML schema
#                          test, Node and the webhook verifier's npm packages,
#                          Deno (the JavaScript runtime a current yt-dlp needs,
#                          from the npm package deno at a pinned version) and
#                          MinIO built at a pinned version, both into a cache
#                          outside the tree (about 3 minutes, once)
#
# Idempotent and quiet when everything is present. Called by `make deps-run`
# and `make deps`.
set -euo pipefail

set_=${1:-test}
packages=(ffmpeg pocketsphinx pocketsphinx-en-us pocketsphinx-testdata)
# The demo serves its clip with python3's http.server.
command -v python3 >/dev/null || packages+=(python3)
case $set_ in
run) ;;
test)
  : "${MINIO_VERSION:?set by the Makefile}"
  : "${YTCAPTION_MINIO_BIN:?set by the Makefile}"
  : "${DENO_VERSION:?set by the Makefile}"
  : "${YTCAPTION_DENO_BIN:?set by the Makefile}"
  packages+=(yt-dlp flite redis-server sctk prometheus chromium libxml2-utils)
  # Node runs the Standard Webhooks reference verifier in the notify tests;
  # a machine with its own Node (and npm) keeps it.
  command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
  ;;
*) echo "usage: install-deps.sh run|test" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "ytcaption needs: ${missing[*]} (Debian/Ubuntu package names). Install them with your package manager." >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "installing ${missing[*]} needs root: run 'sudo make deps'" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$set_" = run ] && exit 0

verifier="$(dirname "$0")/../core/internal/notify/testdata/verifier"
if [ ! -d "$verifier/node_modules/standardwebhooks" ]; then
  echo "installing the webhook verifier's npm packages (package-lock.json)"
  (cd "$verifier" && npm ci --no-audit --no-fund --loglevel=error)
fi

tusclient="$(dirname "$0")/../devstack/testdata/tusclient"
if [ ! -d "$tusclient/node_modules/tus-js-client" ]; then
  echo "installing tus-js-client for the upload test (package-lock.json)"
  (cd "$tusclient" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ ! -x "$YTCAPTION_MINIO_BIN" ]; then
  echo "building MinIO $MINIO_VERSION into $(dirname "$YTCAPTION_MINIO_BIN") (about 3 minutes, once)"
  mkdir -p "$(dirname "$YTCAPTION_MINIO_BIN")"
  GOBIN="$(dirname "$YTCAPTION_MINIO_BIN")" go install "github.com/minio/minio@$MINIO_VERSION"
fi

# Deno: Debian ships none, and its release downloads are not reachable from
# every build machine; the npm package carries the same binary. A machine whose
# YTCAPTION_DENO_BIN points at its own Deno keeps it.
if [ ! -x "$YTCAPTION_DENO_BIN" ]; then
  prefix=${YTCAPTION_DENO_BIN%/node_modules/deno/deno}
  if [ "$prefix" = "$YTCAPTION_DENO_BIN" ]; then
    echo "YTCAPTION_DENO_BIN=$YTCAPTION_DENO_BIN does not exist; unset it to install Deno $DENO_VERSION into the cache" >&2
    exit 1
  fi
  echo "installing Deno $DENO_VERSION (npm package deno) into $prefix"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >/dev/null
  "$YTCAPTION_DENO_BIN" --version | head -1
fi
