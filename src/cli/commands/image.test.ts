// SPDX-License-Identifier: Apache-2.0
/**
 * `avp image`: the command is wired into the program with its options, and an expected failure
 * (here: no apt on PATH and nothing cached) prints one message and exits 1 without a stack trace.
 * The build itself is exercised by image.e2e.test.ts beside this file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { buildProgram } from '../main.js';
import { registerImageCommand } from './image.js';

const AVP = fileURLToPath(new URL('../../../bin/avp.js', import.meta.url));

test('registerImageCommand adds `image build` with --out, --force and --kernel', () => {
  const program = new Command('avp');
  registerImageCommand(program);
  const build = program.commands.find((c) => c.name() === 'image')?.commands.find((c) => c.name() === 'build');
  assert.ok(build, 'image build is registered');
  assert.deepEqual(build.options.map((o) => o.long).sort(), ['--force', '--kernel', '--out']);
});

test('avp image build --kernel takes only a known series', () => {
  const r = spawnSync(process.execPath, [AVP, 'image', 'build', '--kernel', '5.10'], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /--kernel must be one of 6\.12, 6\.12-rt, 6\.1, got "5\.10"/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('buildProgram includes the doctor command', () => {
  assert.ok(buildProgram().commands.some((c) => c.name() === 'doctor'));
});

test('buildProgram includes the image command', () => {
  assert.ok(buildProgram().commands.some((c) => c.name() === 'image'));
});

test('avp image build without apt and without a cache: message naming setup.sh, exit 1, no stack', () => {
  const cache = mkdtempSync(join(tmpdir(), 'avp-cli-image-test-'));
  try {
    const r = spawnSync(process.execPath, [AVP, 'image', 'build'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: '/nonexistent', AVP_CACHE_DIR: cache },
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /avp image build: apt-cache is not installed .*bash scripts\/setup\.sh/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.equal(r.stdout, '');
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
