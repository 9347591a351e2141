#!/usr/bin/env bash
# System packages the test suite runs for real: dnsmasq is the DNS server the DNS discovery tests query.
set -euo pipefail
if ! command -v dnsmasq >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends dnsmasq
fi
# The tests start their own dnsmasq on a free port; a system service would only hold port 53.
systemctl disable --now dnsmasq >/dev/null 2>&1 || true
pkill -x dnsmasq || true
