#!/usr/bin/env bash
# Make <bucket>.localhost resolve to loopback, for virtual-hosted-style requests to the
# test S3 server (http://test-bucket.localhost:PORT). Node and Rust (hyper) both resolve
# through getaddrinfo/NSS, and Debian's default `hosts: files dns` does not know
# *.localhost. libnss-myhostname does: it answers ::1 and 127.0.0.1 for any *.localhost.
# (s3s-fs listens on 127.0.0.1 only; clients fall back from a refused ::1 to 127.0.0.1.)
# Usage: scripts/ensure-localhost-resolution.sh [name]   (default test-bucket.localhost)
set -euo pipefail

name="${1:-test-bucket.localhost}"

resolves() { getent ahostsv4 "$name" 2>/dev/null | grep -q '^127\.0\.0\.1\b'; }

if ! command -v getent >/dev/null; then
  echo "ensure-localhost-resolution: getent not found; this script supports Debian/Ubuntu only." >&2
  echo "Elsewhere, add '127.0.0.1 $name' to /etc/hosts." >&2
  exit 1
fi

if resolves; then
  echo "ok: $name resolves to 127.0.0.1"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null && sudo="sudo" || { echo "ensure-localhost-resolution: need root to install libnss-myhostname" >&2; exit 1; }
fi

if command -v apt-get >/dev/null; then
  echo "$name does not resolve; installing libnss-myhostname"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libnss-myhostname >/dev/null
fi

# The package's postinst adds myhostname to nsswitch.conf; do it ourselves if it did not.
if [ -f /etc/nsswitch.conf ] && ! grep -Eq '^hosts:.*\bmyhostname\b' /etc/nsswitch.conf; then
  $sudo sed -i -E '/^hosts:/ s/\bfiles\b/files myhostname/' /etc/nsswitch.conf
fi

if resolves; then
  echo "ok: $name resolves to 127.0.0.1 (via nss-myhostname)"
else
  echo "ensure-localhost-resolution: $name still does not resolve to 127.0.0.1." >&2
  echo "Add '127.0.0.1 $name' to /etc/hosts, or 'myhostname' to the hosts: line of /etc/nsswitch.conf." >&2
  exit 1
fi
