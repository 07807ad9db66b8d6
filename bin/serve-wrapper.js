// Shared by the avp-vhost-user-* programs: runs `avp serve <device> ...argv`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export async function runServe(device) {
  const main = new URL('../dist/cli/main.js', import.meta.url);
  if (!existsSync(fileURLToPath(main))) {
    process.stderr.write('avp: dist/ is missing; run `npm ci && npm run build` in the repository first\n');
    process.exit(1);
  }
  const { run } = await import(main.href);
  process.exitCode = await run([process.argv[0], 'avp', 'serve', device, ...process.argv.slice(2)]);
}
