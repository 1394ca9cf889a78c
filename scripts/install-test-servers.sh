#!/usr/bin/env bash
# Installs the compatibility matrix's other S3 servers when they are missing: Garage 2.5.0
# (cargo install, ~15-20 min on 2 cores) and moto (pip). s3s-fs is installed by
# scripts/s3-server.mjs on first use. Run by `npm run test:matrix` and by .ci/run; each step
# says what it does before it starts, and does nothing when the server is already there.
set -euo pipefail

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.local/bin:$PATH"

if command -v garage >/dev/null; then
  echo "garage: $(garage --version | head -n 1) (already installed)"
else
  echo "garage: installing 2.5.0 with 'cargo install garage@2.5.0 --locked' (about 15-20 min on 2 cores; once)"
  cargo install garage@2.5.0 --locked
  echo "garage: $(garage --version | head -n 1)"
fi

if command -v moto_server >/dev/null; then
  echo "moto_server: $(command -v moto_server) (already installed)"
else
  echo "moto: installing with pip (about 1-2 min; once)"
  pip=pip; command -v pip >/dev/null || pip="python3 -m pip"
  # A Debian system Python refuses plain installs (PEP 668): then into ~/.local.
  $pip install "moto[server]" || $pip install --user --break-system-packages "moto[server]"
  echo "moto_server: $(command -v moto_server)"
fi
