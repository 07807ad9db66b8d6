#!/usr/bin/env node
// Removes dist/ before a build, so that a source file that was deleted or renamed leaves no
// compiled test behind for the test runner to find.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
