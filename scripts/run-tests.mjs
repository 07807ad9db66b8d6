#!/usr/bin/env node
// Runs the compiled tests (dist/**/*.test.js) with node's test runner.
// Node 20's runner takes no globs, so this script finds the files.
//   --only-properties   run only property tests (*.prop.test.js); AVP_PROPERTY_RUNS sets the case count
//   --unit              skip end-to-end tests (*.e2e.test.js)
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = new Set(process.argv.slice(2));
const root = new URL('../dist', import.meta.url).pathname;

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files = walk(root).sort();
if (args.has('--only-properties')) files = files.filter((f) => f.endsWith('.prop.test.js'));
if (args.has('--unit')) files = files.filter((f) => !f.endsWith('.e2e.test.js'));
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/ (did the build run?)');
  process.exit(1);
}
console.error(`run-tests: ${files.length} test files: ${files.map((f) => relative(root, f)).join(' ')}`);
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
