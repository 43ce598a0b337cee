#!/usr/bin/env bash
# Installs what shoal needs on Debian 12, idempotently: system packages, then the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(runc nftables python3-nftables wireguard-tools wireguard-go skopeo umoci caddy
  postgresql busybox-static docker-registry iproute2 podman conmon python3-venv curl
  chromium psmisc util-linux procps iputils-ping iperf3 netcat-openbsd tini)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts these services on install; shoal runs its own instances, never the system ones.
for svc in docker-registry caddy postgresql; do
  if systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
done

VENV=.venv
STAMP="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV"
fi
# Expose only Debian's nftables binding to the venv, not the whole of dist-packages.
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$VENV/debian-shim"
ln -sfn /usr/lib/python3/dist-packages/nftables "$VENV/debian-shim/nftables"
echo "$(pwd)/$VENV/debian-shim" > "$SITE/shoal_debian_shim.pth"
# Python dependencies come from PyPI the first time, then from this machine's wheelhouse: the
# versions that installed are kept as wheels (scripts/wheelhouse.py) with the build backend, keyed
# by pyproject.toml, so a fresh clone of the same tree (CI's) installs them without a registry.
WHEELHOUSE=${SHOAL_WHEELHOUSE:-/var/cache/shoal/wheels}
KEY="$WHEELHOUSE/$(sha256sum pyproject.toml | cut -c1-16).complete"
pip_install() {
  if [ -f "$KEY" ]; then
    "$VENV/bin/pip" install -q --no-index --find-links "$WHEELHOUSE" "$@"
  else
    "$VENV/bin/pip" install -q "$@"
  fi
}
keep_wheels() {
  mkdir -p "$WHEELHOUSE"
  mapfile -t backend < <("$VENV/bin/python" -c 'import tomllib
print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")')
  if "$VENV/bin/python" scripts/wheelhouse.py "$WHEELHOUSE" &&
    "$VENV/bin/pip" download -q --no-deps -d "$WHEELHOUSE" "${backend[@]}"; then
    touch "$KEY"
  else
    echo "setup: the wheelhouse in $WHEELHOUSE is not complete; the next install uses PyPI again" >&2
  fi
}
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  pip_install --upgrade pip
  pip_install -e '.[dev]'
  [ -f "$KEY" ] || keep_wheels
  touch "$STAMP"
fi
# shoal's own bytecode, as pip writes it for an installed package: an editable install has none,
# and where PYTHONDONTWRITEBYTECODE is set every command would compile shoal's modules again
# (about 12 ms of each CLI command). Only what changed is compiled again.
"$VENV/bin/python" -m compileall -q -j 0 shoal
