// SPDX-License-Identifier: Apache-2.0
/**
 * `avp bench net`: frames per second and Mbit/s through AVP's switch between two vhost-user
 * front-end "guests", and with `--testpmd` the same against dpdk-testpmd (installed with apt-get
 * when missing, as root) in the same run, with the AVP/testpmd ratio. Each round measures AVP,
 * then testpmd (never both running: testpmd's forwarding core spins even when idle); every round
 * is logged on stderr and the per-size medians go to stdout. `npm run bench:net` runs it with
 * `--testpmd`. Argument checks and output only; the benchmark is `bench/net-bench.ts`.
 */
import type { Command } from 'commander';
import { benchAvpSwitch, benchTestpmd, ensureTestpmd, formatNetBench, medians, type NetBenchResult } from '../../bench/net-bench.js';
import { reportLoad } from '../../bench/load.js';
import { emitBenchOutput, type Comparison } from '../../bench/results.js';
import { UsageError } from '../errors.js';
import { parseBusyPollUs } from '../backend-lifecycle.js';

interface BenchNetOptions {
  seconds: string;
  sizes: string;
  rounds: string;
  testpmd?: boolean;
  busyPollUs: string;
}

/** Adds `net` under `avp bench`, creating `bench` if no other command did. */
export function registerBenchNetCommand(program: Command): void {
  const bench = program.commands.find((c) => c.name() === 'bench') ?? program.command('bench').description('benchmarks');
  bench
    .command('net')
    .description('packets/s and Mbit/s between two vhost-user net ports through the AVP switch (and dpdk-testpmd with --testpmd)')
    .option('--seconds <n>', 'measuring time per frame size', '2')
    .option('--rounds <n>', 'rounds, AVP then testpmd in each (never both running at once); medians are reported', '3')
    .option('--sizes <list>', 'Ethernet frame sizes in bytes, comma-separated (60-1514)', '64,1500')
    .option('--busy-poll-us <n>', 'also measure the switch with adaptive busy polling of this window (microseconds; 0: only without); the comparison uses it', '0')
    .option('--testpmd', 'also measure dpdk-testpmd (io forwarding between two net_vhost ports); installs dpdk if missing')
    .action(async (opts: BenchNetOptions) => {
      const seconds = Number(opts.seconds);
      if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600) throw new UsageError(`bench net: --seconds must be a number from 0 to 600, got ${opts.seconds}`);
      const sizes = opts.sizes.split(',').map(Number);
      if (sizes.some((s) => !Number.isSafeInteger(s) || s < 60 || s > 1514)) throw new UsageError(`bench net: --sizes must be integers from 60 to 1514, got ${opts.sizes}`);
      const rounds = Number(opts.rounds);
      if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 20) throw new UsageError(`bench net: --rounds must be an integer from 1 to 20, got ${opts.rounds}`);
      const busyPollUs = parseBusyPollUs('bench net', opts.busyPollUs);
      const log = (m: string) => process.stderr.write(`bench net: ${m}\n`);
      let testpmd: string | undefined;
      if (opts.testpmd === true) {
        const bin = ensureTestpmd(log);
        if (typeof bin === 'string') testpmd = bin;
        else log(`no dpdk-testpmd comparison: ${bin.missing}`);
      }
      const loadBefore = await reportLoad('before', log);
      const all: NetBenchResult[] = [];
      for (let round = 1; round <= rounds; round++) {
        // Each back-end runs alone: testpmd's forwarding core spins even when idle.
        const avp = await benchAvpSwitch(sizes, seconds);
        if (busyPollUs > 0) avp.push(...(await benchAvpSwitch(sizes, seconds, busyPollUs)));
        const peer = testpmd === undefined ? [] : await benchTestpmd(testpmd, sizes, seconds, round === 1 ? log : () => {});
        for (const line of formatNetBench([...avp, ...peer])) log(`round ${round}: ${line}`);
        all.push(...avp, ...peer);
      }
      const results = medians(all);
      process.stdout.write(`median of ${rounds} round(s), ${seconds} s per frame size:\n`);
      for (const line of formatNetBench(results)) process.stdout.write(`${line}\n`);
      const loadAfter = await reportLoad('after', log);
      const pps = (peer: string, size: number): number[] => all.filter((r) => r.peer === peer && r.frameBytes === size).map((r) => r.pps);
      const avpPeer = all.find((r) => busyPollUs > 0 && r.peer !== 'avp switch' && r.peer.startsWith('avp switch'))?.peer ?? 'avp switch';
      const comparisons: Comparison[] =
        testpmd === undefined ? [] : sizes.map((size) => ({ bench: 'net', case: `${size} B frames${busyPollUs > 0 ? `, busy poll ${busyPollUs} us` : ''}`, unit: 'frames/s', higherIsBetter: true, peerName: 'dpdk-testpmd', avp: pps(avpPeer, size), peer: pps('dpdk-testpmd', size) }));
      emitBenchOutput({ bench: 'net', comparisons, loadBefore, loadAfter, notes: [`two vhost-user front-end ports, ${seconds} s per frame size, ${rounds} round(s); AVP: avp switch; peer: dpdk-testpmd io forwarding between two net_vhost ports`] });
    });
}
