#!/usr/bin/env bash
# Models out, as a user does it: start an api and a worker (their own queue prefix and free ports),
# train d2l's concise model on The Time Machine, download its export with curl, load the
# safetensors into d2l's RNNModel (nn.LSTM + nn.Linear) with Debian's PyTorch, generate 50 greedy
# characters from "time traveller" there and with the service (POST /v1/jobs/:id/generate): the
# same text is expected. Also prints each format's size and download time (curl's time_total).
# Cleans up its processes and Redis keys on exit. Needs Redis (REDIS_URL), curl, jq, /usr/bin/python3 with torch.
# usage: bench/export-roundtrip.sh            (EPOCHS, HIDDEN, MAX_TOKENS override the job's model)
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=${EPOCHS:-500}   # d2l train_ch8's
HIDDEN=${HIDDEN:-256}
MAX_TOKENS=${MAX_TOKENS:-10000}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export QUEUE_PREFIX="export-rt-$$-$(date +%s)"
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export HOST=127.0.0.1 HTTP_PORT=$(free_port) GRPC_PORT=$(free_port) API_KEYS=
B="http://127.0.0.1:$HTTP_PORT"
WORK=$(mktemp -d /tmp/export-rt.XXXXXX)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  redis-cli -u "$REDIS_URL" --scan --pattern "$QUEUE_PREFIX:*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

node --import tsx src/cli/main.ts api >"$WORK/api.log" 2>&1 & PIDS+=($!)
node --import tsx src/cli/main.ts worker >"$WORK/worker.log" 2>&1 & PIDS+=($!)
for _ in $(seq 120); do
  [ "$(curl -s "$B/readyz" | jq -r '.workers.live // 0' 2>/dev/null)" -ge 1 ] 2>/dev/null && break
  sleep 0.5
done
curl -sf "$B/readyz" | jq -e '.workers.live >= 1' >/dev/null || { echo "api or worker did not start:"; tail -5 "$WORK"/*.log; exit 1; }
echo "# api at $B, one worker ($(grep -o 'engine [a-z]*/[a-z0-9]*' "$WORK/worker.log" | head -1)), queue prefix $QUEUE_PREFIX"

echo
echo "\$ curl -s -XPOST $B/v1/jobs -d '{\"model\":{\"kind\":\"concise\",\"numHiddens\":$HIDDEN},\"data\":{\"maxTokens\":$MAX_TOKENS},\"train\":{\"epochs\":$EPOCHS,\"seed\":1}}'"
ID=$(curl -sf -XPOST "$B/v1/jobs" -H 'content-type: application/json' \
  -d "{\"model\":{\"kind\":\"concise\",\"numHiddens\":$HIDDEN},\"data\":{\"maxTokens\":$MAX_TOKENS},\"train\":{\"epochs\":$EPOCHS,\"seed\":1}}" | jq -r .id)
echo "job $ID"
while :; do
  J=$(curl -sf "$B/v1/jobs/$ID")
  case $(jq -r .state <<<"$J") in succeeded) break ;; failed | cancelled) echo "job ended $(jq -c '{state,error}' <<<"$J")"; exit 1 ;; esac
  sleep 2
done
jq -r '"succeeded: \(.progress.epoch) epochs, perplexity \(.perplexity * 1000 | round / 1000), \(.summary.totalMs / 1000 | round) s on \(.summary.engine)/\(.summary.backend)"' <<<"$J"

echo
echo "# the four exports over HTTP: curl's time_total, the first download and the next one"
printf '%-12s %-18s %6s %10s %9s %9s\n' format file epoch bytes 'ms first' 'ms again'
dl() { # format, url path, file
  local w1 w2
  w1=$(curl -sf -D "$WORK/h" -o "$WORK/$3" -w '%{size_download} %{time_total}' "$B/v1/jobs/$ID$2")
  w2=$(curl -sf -o "$WORK/$3" -w '%{size_download} %{time_total}' "$B/v1/jobs/$ID$2")
  printf '%-12s %-18s %6s %10d %9.1f %9.1f\n' "$1" "$3" "$(tr -d '\r' <"$WORK/h" | awk -F': ' 'tolower($1) == "x-model-epoch" {print $2}')" \
    "${w1% *}" "$(echo "${w1#* } * 1000" | bc -l)" "$(echo "${w2#* } * 1000" | bc -l)"
}
dl safetensors '/model?format=safetensors' model.safetensors
dl onnx '/model?format=onnx' model.onnx
dl 'tfjs' '/model/model.json' model.json
dl 'tfjs' '/model/weights.bin' weights.bin
dl checkpoint '/model?format=checkpoint' model.ckpt

echo
echo "\$ curl -sOJ \"$B/v1/jobs/$ID/model?format=safetensors\""
(cd "$WORK" && curl -sfOJ "$B/v1/jobs/$ID/model?format=safetensors" && ls -l ./*-epoch*.safetensors | awk '{print $5, $NF}')
SAFE=$(ls "$WORK"/*-epoch*.safetensors)

echo
echo "\$ /usr/bin/python3 - $(basename "$SAFE")   # the inline script below: d2l's RNNModel (bench/d2l_torch.py), load_state_dict, predict_ch8"
PY_TEXT=$(/usr/bin/python3 - "$SAFE" <<'EOF'
import json, sys
import torch
from torch import nn
sys.path.insert(0, 'bench')
from d2l_torch import RNNModel, Vocab, predict_ch8, read_safetensors

sd, meta = read_safetensors(sys.argv[1])
vocab = Vocab.from_tokens(json.loads(meta['vocab']))
V, H = len(vocab), int(meta['num_hiddens'])
net = RNNModel(nn.LSTM(V, H), V)
print(net.load_state_dict(sd, strict=True), f"(torch {torch.__version__}; kind {meta['kind']}, epoch {meta['epoch']}, vocab {V}, {H} hidden units)", file=sys.stderr)
print(predict_ch8('time traveller', 50, net, vocab, torch.device('cpu')))
EOF
)
echo "pytorch:  $PY_TEXT"

echo
echo "\$ curl -s -XPOST $B/v1/jobs/$ID/generate -d '{\"prefix\":\"time traveller\",\"numChars\":50,\"temperature\":0}'"
SVC_TEXT=$(curl -sf -XPOST "$B/v1/jobs/$ID/generate" -H 'content-type: application/json' -d '{"prefix":"time traveller","numChars":50,"temperature":0}' | jq -r .text)
echo "service:  $SVC_TEXT"
echo
if [ "$PY_TEXT" = "$SVC_TEXT" ]; then echo "same text: yes"; else echo "same text: NO"; exit 1; fi
