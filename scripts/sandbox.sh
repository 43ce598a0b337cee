#!/usr/bin/env bash
# `make sandbox`: a four-node cluster on this machine (two nodes behind NAT, so NAT-to-NAT traffic
# goes through the relay), the example app deployed on it, and what to try next.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL=.venv/bin/shoal
COMPOSE=examples/hello/compose.yaml

"$SHOAL" sandbox up --nodes 4 --nat 2
# `up` built the example image offline (busybox-static + umoci) and pushed it to the registry.
"$SHOAL" sandbox status
"$SHOAL" deploy -f "$COMPOSE" --project hello

status_json=$("$SHOAL" sandbox status --output json)
field() { .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]) or "")' "$1" <<<"$status_json"; }
ingress_ip=$(.venv/bin/python -c '
import json, sys
doc = json.load(sys.stdin)
print(next(n["address"] for n in doc["nodes"] if n["ingress"]))' <<<"$status_json")
ingress_ca=$(field ingress_ca)

cat <<TRY

The sandbox is up and the example app "hello" is deployed. Try:

  $SHOAL ps                          # every replica: node, state, health, ip
  $SHOAL service logs web -f         # merged replica logs
  $SHOAL service exec web -- hostname
  $SHOAL node ls
  curl --cacert ${ingress_ca:-<ingress_ca from 'shoal sandbox status --output json'>} \\
       --resolve hello.sandbox.test:443:${ingress_ip} https://hello.sandbox.test/
  $SHOAL sandbox exec n3 -- ping -c1 203.0.113.11
  $SHOAL sandbox down                # remove everything

TRY
