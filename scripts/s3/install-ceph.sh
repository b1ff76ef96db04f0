#!/bin/bash
# Installs the Debian packages of a one-node Ceph cluster with a RADOS Gateway (Debian 12: 16.2.15).
# Needs root and Debian's package mirror. Idempotent: does nothing when radosgw is already there.
set -euo pipefail
if command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v uuidgen >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-ceph.sh: installing radosgw needs root (apt-get install ceph-mon ceph-osd radosgw uuid-runtime curl)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ceph-mon ceph-osd radosgw uuid-runtime curl >/dev/null
