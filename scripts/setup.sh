#!/usr/bin/env bash
# Sets up AVP on a fresh Debian 12 machine, idempotently: system packages (when root and missing),
# npm dependencies, and the TypeScript build. Safe to run again; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the end-to-end tests and benchmarks use. Installed only when missing.
#   qemu-system-x86     the reference vhost-user front-end: QEMU 10.0 from bookworm-backports (below)
#   qemu-system-common  qemu-storage-daemon, the third-party vhost-user-blk peer
#   busybox-static      the guest's userland (avp image build)
#   cpio, xz-utils, zstd  packing the guest initramfs, unpacking kernel modules and linux-source
#   kmod                depmod: the kernel package ships no modules.dep (its postinst makes it)
#   gcc, make           building gpio-virtio and i2c-virtio from Debian's linux-source, and fio from
#                       Debian's fio source (avp image build)
#   libc6-dev           fio's build needs the C library headers (gcc only recommends them)
#   libseccomp2, libcap-ng0, libglib2.0-0, libnuma1   the libraries of virtiofsd (below)
#   chromium            headless browser for the dashboard's tests (avp run --ui), driven by
#                       playwright-core, which never downloads a browser of its own
APT_PACKAGES=(busybox-static cpio xz-utils zstd kmod gcc make libc6-dev libseccomp2 libcap-ng0 libglib2.0-0 libnuma1 chromium)
# From bookworm-backports: QEMU 10.0. Debian 12's QEMU 7.2 cannot serve vhost-user input or GPU
# without KVM and has no vhost-user-snd (shared/reference/device-wave-2.md §0-1).
QEMU_PACKAGES=(qemu-system-x86 qemu-system-common qemu-utils)
QEMU_MIN_VERSION=1:10.0
BACKPORTS=bookworm-backports

is_root() { [ "$(id -u)" = 0 ]; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# Prints an apt sources entry for bookworm-backports, made from the machine's own entry for the
# bookworm main suite (same mirror, components and key), so no host is hard-coded. deb822 format
# (/etc/apt/sources.list.d/*.sources) is tried first, then one-line format (sources.list).
backports_entry() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$BACKPORTS" '
      function flush() {
        if (uris != "" && match(" " suites " ", / bookworm /) && types ~ /(^| )deb( |$)/) {
          printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n", uris, suite, comps
          if (signed != "") printf "Signed-By: %s\n", signed
          found = 1; exit
        }
        types = uris = suites = comps = signed = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
      /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      /^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
      /^Signed-By:/ { sub(/^Signed-By:[ \t]*/, ""); signed = $0 }
      END { if (!found) flush(); if (!found) exit 1 }
    ' "$f" && return 0
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI bookworm components...  ->  the same with bookworm-backports
    awk -v suite="$BACKPORTS" '
      $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == "bookworm") { $(i + 1) = suite; print; found = 1; exit } }
      END { exit !found }
    ' "$f" && return 0
  done
  return 1
}

has_backports_source() {
  grep -rqsE "(^|[[:space:]])${BACKPORTS}([[:space:]]|$)" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

qemu_is_current() {
  local v
  v=$(version_of qemu-system-x86)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge "$QEMU_MIN_VERSION" && installed qemu-system-common && installed qemu-utils
}

missing=()
for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
need_qemu=0
qemu_is_current || need_qemu=1

if ((${#missing[@]})) || ((need_qemu)); then
  if is_root; then
    export DEBIAN_FRONTEND=noninteractive
    updated=0
    if ((need_qemu)) && ! has_backports_source; then
      entry=$(backports_entry) || { echo "setup: no Debian bookworm entry in the apt sources to derive ${BACKPORTS} from" >&2; exit 1; }
      echo "setup: adding ${BACKPORTS} (from the machine's own Debian sources) for QEMU 10.0"
      printf '# Added by AVP scripts/setup.sh: QEMU 10.0 for vhost-user input, GPU and sound.\n%s\n' "$entry" \
        > /etc/apt/sources.list.d/avp-${BACKPORTS}.sources
    fi
    apt-get update -qq
    if ((${#missing[@]})); then
      echo "setup: installing ${missing[*]}"
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ((need_qemu)); then
      echo "setup: installing QEMU 10.0 from ${BACKPORTS} (${QEMU_PACKAGES[*]})"
      apt-get install -y -qq --no-install-recommends -t "$BACKPORTS" "${QEMU_PACKAGES[@]}" >/dev/null
      qemu_is_current || { echo "setup: ${BACKPORTS} did not provide QEMU >= 10.0 (got $(version_of qemu-system-x86))" >&2; exit 1; }
    fi
  else
    ((need_qemu)) && missing+=("${QEMU_PACKAGES[@]/%//${BACKPORTS}}")
    echo "setup: missing system packages (${missing[*]}); run as root or install them with apt-get" >&2
  fi
fi

# virtiofsd, the peer of AVP's fs back-end in its conformance test and benchmark. QEMU 10.0 ships
# none (QEMU dropped its C virtiofsd in 8.0) and Debian 12 has no package of the Rust one, so the C
# virtiofsd of Debian 12's own qemu-system-common 7.2 is unpacked from that package: one file,
# nothing installed through dpkg (it would replace QEMU 10.0's qemu-system-common).
VIRTIOFSD=/usr/local/libexec/avp/virtiofsd
newest_qemu72_common() {
  apt-cache madison qemu-system-common 2>/dev/null | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | grep -E '^([0-9]+:)?7\.' | head -n1
}
install_virtiofsd() {
  [ -x "$VIRTIOFSD" ] && return 0
  if ! is_root; then
    echo "setup: $VIRTIOFSD is missing (run as root to install it; the fs conformance test against virtiofsd needs it)" >&2
    return 0
  fi
  local version tmp
  version=$(newest_qemu72_common)
  if [ -z "$version" ]; then apt-get update -qq; version=$(newest_qemu72_common); fi
  [ -n "$version" ] || { echo "setup: apt knows no qemu-system-common 7.x (Debian 12's bookworm suite) to take virtiofsd from" >&2; exit 1; }
  echo "setup: installing virtiofsd from qemu-system-common $version as $VIRTIOFSD"
  tmp=$(mktemp -d)
  # The download runs as root into a private folder: apt's sandbox user cannot write there (a warning).
  (cd "$tmp" && apt-get download -qq "qemu-system-common=$version" 2>/dev/null)
  dpkg-deb --fsys-tarfile "$tmp"/qemu-system-common_*.deb | tar -x -C "$tmp" ./usr/lib/qemu/virtiofsd
  install -D -m 0755 "$tmp/usr/lib/qemu/virtiofsd" "$VIRTIOFSD"
  rm -rf "$tmp"
  "$VIRTIOFSD" --version | head -n1
}
install_virtiofsd

# npm dependencies. --ignore-scripts: koffi ships its native binary prebuilt in an optional
# dependency; its install script only re-verifies it (see shared/reference, Node notes §6.8).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --ignore-scripts --no-audit --no-fund
fi
npm run --silent build
echo "setup: done"
