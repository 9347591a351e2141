#!/usr/bin/env bash
# System packages the test suite runs for real: dnsmasq is the DNS server the DNS discovery tests query
# (test/helpers/dnsmasq.ts starts its own instances on free ports of 127.0.0.1 and kills them by PID);
# chromium is the browser the status-page tests drive through playwright-core (test/helpers/browser.ts);
# slowhttptest is the attack tool `npm run test:hostile` points at bulb on 127.0.0.1;
# nghttp2-client (nghttp, h2load) and curl are the HTTP/2 clients the HTTP/2 and gRPC tests use, and openssl makes
# the test certificates (test/helpers/pki.ts).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
updated=0
apt_install() {
  if [ "$updated" = 0 ]; then
    apt-get update
    updated=1
  fi
  apt-get install -y --no-install-recommends "$@"
}
if [ ! -x /usr/sbin/dnsmasq ] && ! command -v dnsmasq >/dev/null 2>&1; then
  # dnsmasq-base is the binary alone: no init script and no systemd unit, so no system service starts,
  # holds port 53 or needs stopping (the `dnsmasq` package adds exactly that service on top of it).
  apt_install dnsmasq-base
fi
if [ ! -x /usr/bin/chromium ]; then
  # Debian's own build: playwright-core's browser download needs the internet, which CI does not have.
  # fonts-liberation (a Recommends) gives the screenshots real glyphs; the rest of its Recommends is not needed.
  apt_install chromium fonts-liberation
fi
if ! command -v slowhttptest >/dev/null 2>&1; then
  apt_install slowhttptest
fi
if ! command -v nghttp >/dev/null 2>&1; then
  apt_install nghttp2-client
fi
for tool in curl openssl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    apt_install "$tool"
  fi
done
