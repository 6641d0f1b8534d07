#!/usr/bin/env bash
# Transcribes a LibriVox clip from pocketsphinx-testdata through the public REST
# API and prints its SRT. Uses a stack already serving on $YTCAPTION_URL (default
# http://127.0.0.1:8000, key from $YTCAPTION_DEV_API_KEY); otherwise starts
# `ytcaption-dev` for the length of the demo. Called by `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${YTCAPTION_URL:-http://127.0.0.1:8000}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }

if ! curl -fsS "$base/health/ready" >/dev/null 2>&1; then
  export YTCAPTION_DEV_API_KEY=${YTCAPTION_DEV_API_KEY:-ytc_demo_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
  echo "starting the dev stack (log: $work/stack.log)"
  bin/ytcaption-dev --edge-addr "${base#http://}" >"$work/stack.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 120); do
    curl -fsS "$base/health/ready" >/dev/null 2>&1 && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/stack.log"; echo "the dev stack exited" >&2; exit 1; }
    sleep 0.5
  done
fi
key=${YTCAPTION_DEV_API_KEY:?set YTCAPTION_DEV_API_KEY to the running stack\'s API key}

clips=$(dpkg -L pocketsphinx-testdata | grep '/librivox$' | head -1)
id=sense_and_sensibility_01_austen_64kb-0870
ffmpeg -loglevel error -y -i "$clips/$id.wav" -c:a libvorbis "$work/clip.ogg"
# -u: a python3 writing to a file buffers the "Serving HTTP on … port N" line this waits for.
(cd "$work" && exec python3 -u -m http.server 0 --bind 127.0.0.1 >"$work/http.log" 2>&1) &
pids+=($!)
port=
for _ in $(seq 100); do port=$(grep -o 'port [0-9]*' "$work/http.log" | awk '{print $2}' || true); [ -n "$port" ] && break; sleep 0.1; done
[ -n "$port" ] || { echo "the local media server did not start" >&2; exit 1; }

echo "reference: $(grep "($id)" "$clips/transcription" | sed 's/<s>//;s/<\/s>//;s/(.*)//')"
auth=(-H "Authorization: Bearer $key")
job=$(curl -fsS "${auth[@]}" -H 'Content-Type: application/json' -d "{\"url\":\"http://127.0.0.1:$port/clip.ogg\",\"language\":\"en\"}" "$base/v1/jobs")
jid=$(echo "$job" | json 'd["id"]')
echo "job $jid queued"
last=""
for _ in $(seq 600); do
  job=$(curl -fsS "${auth[@]}" "$base/v1/jobs/$jid")
  st=$(echo "$job" | json 'd["status"]')
  [ "$st" != "$last" ] && echo "  $st" && last=$st
  case $st in succeeded) break ;; failed|cancelled) echo "$job"; exit 1 ;; esac
  sleep 0.5
done
[ "$st" = succeeded ] || { echo "timed out waiting for job $jid" >&2; exit 1; }
echo
curl -fsS "${auth[@]}" "$base/v1/jobs/$jid/transcript?format=srt"
