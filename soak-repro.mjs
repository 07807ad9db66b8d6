import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectUnix, closeQuiet } from './dist/sys/index.js';
import { Attacker } from './dist/vhost-user/testing/attacker.js';
const dir = mkdtempSync('/tmp/avp-repro-');
const sock = join(dir, 'rng.sock');
const child = spawn(process.execPath, ['bin/avp.js', 'serve', 'rng', '--socket-path', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
await new Promise((res) => { let seen=''; child.stderr.setEncoding('utf8').on('data', (c) => { seen += c; if (/serving/.test(seen)) res(); }); });
const pid = child.pid;
let i = 0;
try {
  for (; i < 3000; i++) {
    const a = new Attacker(sock, 5000).handshake();
    try { a.fe.sendRaw(new Uint8Array([13,0,0,0,1,0,0,0,8,0,0,0,1,2,3]), []); } catch {}
    a.close();
  }
  console.log('no failure');
} catch (e) {
  console.log('failed at', i, e.message);
  console.log(readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ').slice(0,4).join(' '));
  for (const t of (await import('node:fs')).readdirSync(`/proc/${pid}/task`)) console.log('task', t, readFileSync(`/proc/${pid}/task/${t}/stat`,'utf8').split(') ')[1].slice(0,1), readFileSync(`/proc/${pid}/task/${t}/wchan`,'utf8'), readFileSync(`/proc/${pid}/task/${t}/comm`,'utf8').trim());
}
child.kill('SIGKILL');
