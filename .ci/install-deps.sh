#!/usr/bin/env bash
# System packages the test suite runs for real: dnsmasq is the DNS server the DNS discovery tests query
# (test/helpers/dnsmasq.ts starts its own instances on free ports of 127.0.0.1 and kills them by PID);
# slowhttptest is the attack tool `npm run test:hostile` points at bulb on 127.0.0.1.
set -euo pipefail
if [ ! -x /usr/sbin/dnsmasq ] && ! command -v dnsmasq >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  # dnsmasq-base is the binary alone: no init script and no systemd unit, so no system service starts,
  # holds port 53 or needs stopping (the `dnsmasq` package adds exactly that service on top of it).
  apt-get install -y --no-install-recommends dnsmasq-base
fi
if ! command -v slowhttptest >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends slowhttptest
fi
