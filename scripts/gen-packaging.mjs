#!/usr/bin/env node
// Writes the per-device-kind packaging (bin/avp-vhost-user-<kind>.js, share/qemu/vhost-user/50-avp-<kind>.json,
// package.json and package-lock.json "bin") from the device registry (compiled to dist/; src/cli/packaging.ts says what).
// Run by `npm run build`; src/cli/packaging.test.ts fails when a committed file is stale.
// Files of kinds no longer in the registry are removed.
//   --check   exit 1 (and change nothing) when a file differs from what would be written
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { packagingFiles, binMap } = await import(new URL('../dist/cli/packaging.js', import.meta.url).href);
const check = process.argv.includes('--check');
const stale = [];
const read = (p) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined);

const files = packagingFiles();
for (const f of files) {
  const target = `${root}${f.path}`;
  if (read(target) === f.text) continue;
  stale.push(f.path);
  if (!check) {
    writeFileSync(target, f.text);
    if (f.path.startsWith('bin/')) chmodSync(target, 0o755);
  }
}
const wanted = new Set(files.map((f) => f.path));
for (const [dir, re] of [['bin', /^avp-vhost-user-.*\.js$/], ['share/qemu/vhost-user', /^50-avp-.*\.json$/]]) {
  for (const name of readdirSync(`${root}${dir}`)) {
    if (!re.test(name) || wanted.has(`${dir}/${name}`)) continue;
    stale.push(`${dir}/${name} (no such kind)`);
    if (!check) rmSync(`${root}${dir}/${name}`);
  }
}
const pkgPath = `${root}package.json`;
const pkgText = readFileSync(pkgPath, 'utf8');
const pkg = JSON.parse(pkgText);
if (JSON.stringify(pkg.bin) !== JSON.stringify(binMap())) {
  stale.push('package.json bin');
  if (!check) {
    pkg.bin = binMap();
    writeFileSync(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);
  }
}
// package-lock.json repeats the root package's bin map (keys sorted, as npm writes them).
const lockPath = `${root}package-lock.json`;
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const sortedBin = Object.fromEntries(Object.entries(binMap()).sort(([a], [b]) => (a < b ? -1 : 1)));
if (lock.packages?.[''] !== undefined && JSON.stringify(lock.packages[''].bin) !== JSON.stringify(sortedBin)) {
  stale.push('package-lock.json bin');
  if (!check) {
    lock.packages[''].bin = sortedBin;
    writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
  }
}
if (stale.length > 0) {
  if (check) {
    console.error(`gen-packaging: stale: ${stale.join(', ')}; run npm run build`);
    process.exit(1);
  }
  console.error(`gen-packaging: wrote ${stale.join(', ')}`);
}
