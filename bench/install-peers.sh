#!/bin/sh
# Installs the peers bench/e2e.mjs compares bulb with (nginx, HAProxy) and the load generator (wrk), from
# Debian's packages. Run as root: `sh bench/install-peers.sh`.
#
# The packages' own services must not run: they would hold port 80 and eat CPU on the core the balancers are
# pinned to. bench/e2e.mjs starts its own nginx and HAProxy from generated configs on high loopback ports.
# So (1) the Debian policy-rc.d hook (exit 101) stops the packages' postinst from starting their services at
# all; we add it only for this install when the image does not already have it, and (2) if a service did
# start anyway, it is stopped by its own init system or by the PID in its pid file, never by process name
# (other people's nginx/HAProxy processes on this machine are not ours to kill).
set -eu

if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers.sh: run as root (apt-get)" >&2
  exit 1
fi

added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  added_policy=1
fi
# Remove our temporary hook however the script ends.
cleanup() { if [ "$added_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends nginx haproxy wrk

# Belt and braces: if systemd is running the services, disable and stop them.
systemctl disable --now nginx haproxy 2>/dev/null || true
for pidfile in /run/nginx.pid /run/haproxy.pid; do
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null && echo "install-peers.sh: stopped the packaged service, PID $pid ($pidfile)"
  fi
done

echo "install-peers.sh: $(nginx -v 2>&1); $(haproxy -v 2>&1 | head -n 1); $(wrk -v 2>&1 | head -n 1)"
