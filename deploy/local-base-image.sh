#!/usr/bin/env bash
# Makes the Python base image locally, for a Docker engine that reaches no image registry:
#
#   deploy/local-base-image.sh [TAG]        # default voicetap-base:py311; nothing to do if present
#   docker build --build-arg PYTHON_IMAGE=voicetap-base:py311 -f deploy/Dockerfile ...
#
# Debian bookworm (Python 3.11) from debootstrap, imported as an image. The machine's CA bundle goes
# in, so that pip and uv inside `docker build` reach the package index the way this machine does.
# With a registry, use the Dockerfile's default PYTHON_IMAGE instead: this script is not needed.
set -euo pipefail

tag=${1:-voicetap-base:py311}
if docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi

ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
root=$(mktemp -d /var/tmp/voicetap-base.XXXXXX)
trap 'rm -rf "$root"' EXIT

debootstrap --variant=minbase \
  --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
  bookworm "$root" >"$root.log" 2>&1 || { cat "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# pip may install into the image's Python (the Dockerfile's build stage installs uv that way).
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
cp "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

tar -C "$root" -c . | docker import \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt UV_NATIVE_TLS=1' \
  --change 'CMD ["python3"]' \
  - "$tag" >/dev/null
echo "made $tag"
