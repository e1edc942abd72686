#!/usr/bin/env bash
# Debian packages the demo and the tests run: nginx and keepalived as real peers, iproute2/nftables for the
# namespace lab, arping for gratuitous ARP, socat for the test bed's API relay, stress-ng for the starvation bench.
# docker.io, debootstrap and jq build and run the kind cluster (scripts/docker-daemon.sh, scripts/kind-images.sh).
# gcc builds the agent's gratuitous-ARP helper (src/agent/adapters/garp.c) in `npm run build`.
# python3-aiosmtpd is the SMTP server that receives Alertmanager's mail in test/e2e/alerting.test.ts.
set -euo pipefail
packages=(iproute2 nginx-light keepalived iputils-arping tcpdump openssl curl socat nftables stress-ng procps ca-certificates docker.io debootstrap jq gcc python3-aiosmtpd)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start nginx or keepalived in the machine's own namespace.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" > /tmp/ha-nginx-apt.log || { tail -50 /tmp/ha-nginx-apt.log; exit 1; }
