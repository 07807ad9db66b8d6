#!/usr/bin/env bash
# Sets up AVP on a fresh Debian 12 machine, idempotently: system packages (when root and missing),
# npm dependencies, and the TypeScript build. Safe to run again; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the end-to-end tests and benchmarks use. Installed only when missing.
#   qemu-system-x86     the reference vhost-user front-end (QEMU 7.2 on Debian 12)
#   qemu-system-common  qemu-storage-daemon, the third-party vhost-user-blk peer
#   busybox-static      the guest's userland (avp image build)
#   cpio, xz-utils, zstd  packing the guest initramfs, unpacking kernel modules
#   kmod                depmod: the kernel package ships no modules.dep (its postinst makes it)
APT_PACKAGES=(qemu-system-x86 qemu-system-common qemu-utils busybox-static cpio xz-utils zstd kmod)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages (${missing[*]}); run as root or install them with apt-get" >&2
  fi
fi

# npm dependencies. --ignore-scripts: koffi ships its native binary prebuilt in an optional
# dependency; its install script only re-verifies it (see shared/reference, Node notes §6.8).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --ignore-scripts --no-audit --no-fund
fi
npm run --silent build
echo "setup: done"
