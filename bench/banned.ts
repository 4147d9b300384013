/**
 * Micro-benchmark of the banned check every CONNECT makes (`src/auth/banned.ts`).
 *
 * Run: `npm run build && node dist/bench/banned.js`. A client that matches nothing is checked
 * against growing lists: none, 30,000 client id / username / address entries (map lookups),
 * then 100 CIDR entries and 10 regex entries (scanned in turn). Reports nanoseconds per check.
 * Numbers go to docs/benchmarks.md with the date; tests never assert on them.
 */
import { Banned, type BanSubject } from '../src/auth/banned.js';

function nsPerCheck(b: Banned, subject: BanSubject, n = 1_000_000): number {
  for (let i = 0; i < 100_000; i++) b.check(subject);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) b.check(subject);
  return Number(process.hrtime.bigint() - t) / n;
}

const subject: BanSubject = { clientId: 'client-424242', username: 'user-424242', peerHost: '192.0.2.77' };
const b = new Banned();
const rows: Array<[string, number]> = [['no entries', nsPerCheck(b, subject)]];
for (let i = 0; i < 10_000; i++) {
  b.add({ as: 'clientid', who: `c-${i}` });
  b.add({ as: 'username', who: `u-${i}` });
  b.add({ as: 'peerhost', who: `10.${(i >> 8) & 255}.${i & 255}.1` });
}
rows.push(['30,000 client id / username / address entries', nsPerCheck(b, subject)]);
for (let i = 0; i < 100; i++) b.add({ as: 'peerhost_net', who: `10.${i}.0.0/16` });
rows.push(['+ 100 CIDR entries', nsPerCheck(b, subject, 200_000)]);
for (let i = 0; i < 10; i++) b.add({ as: 'clientid_re', who: `^bot-${i}-\\d+$` });
rows.push(['+ 10 regex entries', nsPerCheck(b, subject, 200_000)]);
for (const [label, ns] of rows) console.log(`${label.padEnd(48)} ${ns.toFixed(0).padStart(7)} ns/check`);
