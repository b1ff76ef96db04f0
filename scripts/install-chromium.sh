#!/bin/bash
# Installs Debian's headless Chromium for the dashboard's browser tests (packages/ui/src/browser.test.ts),
# which drive it with playwright-core (Playwright's own browser download does not work offline).
# Needs root and Debian's package mirror. Idempotent: does nothing when /usr/bin/chromium is there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-chromium.sh: installing chromium needs root (apt-get install chromium fonts-dejavu-core)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# A font, so that the screenshots have text in them.
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
