#!/bin/bash
# Start a throwaway single-node Ceph cluster (1 mon, 1 memstore OSD, 1 radosgw) on 127.0.0.1.
# usage: start-ceph-rgw.sh DIR [RGW_PORT] [MON_PORT]
# Modelled on ../shared/s3 (tested there): memstore OSD, no auth, credentials S3RVER/S3RVER.
# Needs: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw  (Debian 12: 16.2.15 pacific)
set -euo pipefail
DIR=${1:?dir}; RGW_PORT=${2:-7480}; MON_PORT=${3:-46789}
T0=$(date +%s%N); ms() { echo $(( ($(date +%s%N)-T0)/1000000 )); }
rm -rf "$DIR"; mkdir -p "$DIR"/{mon,osd/ceph-0,run,log}
FSID=$(uuidgen); CONF="$DIR/ceph.conf"
cat > "$CONF" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT+1))]
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
ms client mode = crc secure
ms mon cluster mode = crc secure
ms mon service mode = crc secure
auth allow insecure global id reclaim = false
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
ms bind ipv6 = false
ms bind ipv4 = true
cluster addr = 127.0.0.1
osd objectstore = memstore
memstore device bytes = 4294967296
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
keyring = $DIR/keyring
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw thread pool size = 64
CONF
ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT+1))]" --fsid "$FSID" "$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
ceph-mon -c "$CONF" -i a 2>/dev/null
echo "mon up after $(ms) ms"
OSD_UUID=$(uuidgen)
OSD_ID=$(ceph -c "$CONF" osd new "$OSD_UUID")
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" 2>/dev/null
ceph-osd -c "$CONF" -i "$OSD_ID" 2>/dev/null
up=0; for i in $(seq 1 60); do if timeout 10 ceph -c "$CONF" osd stat 2>/dev/null | grep -q "1 up.*1 in"; then up=1; break; fi; sleep 0.5; done
[ "$up" = 1 ] || { echo "osd did not come up" >&2; tail -n 20 "$DIR/log/osd.$OSD_ID.log" >&2; exit 1; }
echo "osd up after $(ms) ms"
timeout 120 radosgw -c "$CONF" -n client.rgw.a
up=0; for i in $(seq 1 120); do if curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/"; then up=1; break; fi; sleep 0.5; done
[ "$up" = 1 ] || { echo "radosgw did not answer" >&2; tail -n 20 "$DIR/log/client.rgw.a.log" >&2; exit 1; }
echo "rgw answering after $(ms) ms"
radosgw-admin -c "$CONF" user create --uid=s3test --display-name=s3test --access-key=S3RVER --secret-key=S3RVER >/dev/null
echo "user created after $(ms) ms"
echo "pids: mon=$(cat $DIR/run/mon.a.pid) osd=$(cat $DIR/run/osd.$OSD_ID.pid) rgw=$(cat $DIR/run/client.rgw.a.pid)"
