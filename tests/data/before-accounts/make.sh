#!/bin/bash
# Produces the before-accounts fixture with the binary of commit 0fd3804 (the version before
# [[accounts]]): make.sh BIN SRC, where BIN is that commit's target/debug/edi-bridge and SRC its
# source tree (mapping and samples). It builds the fixture in /tmp/fx (removed first); copy that
# directory here without its empty directories.
set -euo pipefail
BIN=$1; SRC=$2; D=/tmp/fx
rm -rf $D /tmp/fx-sim-calls.jsonl; mkdir -p $D && cd $D
mkdir outbox inbox archive error
cp $SRC/mappings/ingram.toml mapping.toml
printf 'fixture-webhook-secret' > webhook.secret
printf 'fixture-client-secret' > client.secret
cat > edi-bridge.toml.template <<'EOF'
# Config as edi-bridge 0fd3804 (before [[accounts]]) read it: one [ingram] + [mapping].
# The test fills {dir} (where the fixture is copied), {base_url} and {token_url}.
[server]
listen = "127.0.0.1:0"
webhook_secret_file = "{dir}/webhook.secret"
max_body_bytes = 65536
[paths]
state = "{dir}/state"
outbox = "{dir}/outbox"
inbox = "{dir}/inbox"
archive = "{dir}/archive"
error = "{dir}/error"
[ingram]
api_base_url = "{base_url}"
token_url = "{token_url}"
client_id = "fixture-client"
client_secret_file = "{dir}/client.secret"
request_timeout_secs = 2
partner_id = "US123456"
country_code = "US"
sender_id = "ACME-EDI"
requests_per_minute = 60000
[mapping]
file = "mapping.toml"
[outbox]
retry_secs = 1
[store]
# The fixture's POs never age out of the store, whenever the test runs.
retention_days = 36500
EOF
EDI_BRIDGE_CLIENT_SECRET=fixture-client-secret $BIN sim --listen 127.0.0.1:0 --client-id fixture-client \
  --partner-id US123456 --faults 400 --record /tmp/fx-sim-calls.jsonl > /tmp/fx-sim.log 2>&1 &
SIM=$!
sleep 1
PORT=$(grep -o 'listen=127.0.0.1:[0-9]*' /tmp/fx-sim.log | cut -d: -f2)
sed -e "s#{dir}#$D#g" -e "s#{base_url}#http://127.0.0.1:$PORT/vendors/v1#" \
    -e "s#{token_url}#http://127.0.0.1:$PORT/oauth/oauth30/token#" edi-bridge.toml.template > edi-bridge.toml
$BIN check --config edi-bridge.toml
$BIN run --config $D/edi-bridge.toml > /tmp/fx-daemon.log 2>&1 &
DAEMON=$!
sleep 2
URL=http://$(grep -o 'listen=127.0.0.1:[0-9]*' /tmp/fx-daemon.log | cut -d= -f2)/webhooks/ingram/purchase-orders
mkdir -p /tmp/fx-hooks
for i in 1 2 3; do
  python3 -c "
import json
v=json.load(open('$SRC/samples/ingram-po-webhook.json'))
v['eventid']='FX-OLD-EVT-$i'
v['resource'][0]['ingramPurchaseOrderNumber']='IM-OLD-$i'
print(json.dumps(v))" > /tmp/fx-hooks/po$i.json
  EDI_BRIDGE_WEBHOOK_SECRET=fixture-webhook-secret $BIN sim send-webhook --url $URL /tmp/fx-hooks/po$i.json; echo
done
sleep 2
ack(){ sed -e "s/IM-PO-1001/$1/" -e "s/000000501/$(printf %09d $2)/" -e "s/\*501\*X\*/*$2*X*/" \
  -e "s/GE\*1\*501~/GE*1*$2~/" $SRC/samples/ingram-po-855.edi; }
# IM-OLD-1's 855: the emulator's one fault answers 400, so its PO Response is dead-lettered.
ack IM-OLD-1 501 > inbox/.a1.part && mv inbox/.a1.part inbox/old1.855; sleep 3
# IM-OLD-2's 855: delivered.
ack IM-OLD-2 502 > inbox/.a2.part && mv inbox/.a2.part inbox/old2.855; sleep 3
# IM-OLD-3: the ERP's accepting 997 for its 850 (GS06 3).
isa=$(head -1 $SRC/samples/ingram-po-855.edi | sed 's/000000501/000000503/')
printf '%s\nGS*FA*VENDORERP*INGRAMMICRO*20261121*0900*503*X*004010~\nST*997*0001~\nAK1*PO*3~\nAK2*850*0003~\nAK5*A~\nAK9*A*1*1*1~\nSE*6*0001~\nGE*1*503~\nIEA*1*000000503~\n' "$isa" > inbox/.a3.part
mv inbox/.a3.part inbox/old3.997; sleep 3
$BIN status --config edi-bridge.toml
kill -TERM $DAEMON; wait $DAEMON || true
kill -TERM $SIM; wait $SIM || true
tail -1 /tmp/fx-daemon.log
rm edi-bridge.toml
