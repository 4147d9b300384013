// One turn's output to one client above the concatenation limit (256 KB): it goes out as a
// few large writes, every packet intact and in order, QoS 1 packet ids patched in, and a
// packet larger than the limit sent whole in its place.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encode, type PublishPacket } from '../../src/codec/index.js';
import { RawClient, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';

describe('a turn with more output than one concatenated write', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { max_inflight: 65535, max_mqueue_len: 100000 } });
  });
  after(() => b.stop());

  for (const version of [4, 5] as const) {
    test(`MQTT ${version === 4 ? '3.1.1' : '5'}: 3,000 small packets (QoS 0 and 1) and one of 300 KB arrive in order, ids patched, in a few writes`, async () => {
      const sub = RawClient.memory(b.petrel, version);
      await sub.connect(`wb-sub-${version}`);
      await sub.subscribe(`wb${version}/#`, 1);
      let chunks = 0;
      sub.stream.on('data', () => chunks++);

      const pub = RawClient.memory(b.petrel, version);
      await pub.connect(`wb-pub-${version}`);
      // Every PUBLISH in one write: the broker reads it in one chunk, so all deliveries to the
      // subscriber are queued in the same turn (about 900 KB, under the 1 MB high watermark).
      const frames: Buffer[] = [];
      const expected: Array<{ topic: string; qos: number; size: number }> = [];
      const N = 3000;
      for (let i = 0; i < N; i++) {
        const qos = i % 3 === 0 ? 0 : 1;
        const size = i === N / 2 ? 300 * 1024 : 190;
        const payload = Buffer.alloc(size, i % 251);
        const topic = `wb${version}/${qos}/${i}`;
        frames.push(encode({ type: 3, topic, payload, qos, retain: false, dup: false, packetId: qos === 1 ? i + 1 : undefined }, version));
        expected.push({ topic, qos, size });
      }
      pub.sendBytes(Buffer.concat(frames));

      await waitFor(() => sub.pending(3).length === N, 10_000, 'all deliveries');
      const got = sub.pending(3) as PublishPacket[];
      const ids = new Set<number>();
      got.forEach((p, i) => {
        const e = expected[i]!;
        assert.equal(p.topic, e.topic, `packet ${i} in order`);
        assert.equal(p.qos, e.qos);
        assert.equal(p.payload.length, e.size);
        assert.ok(p.payload.every((x) => x === i % 251), `payload ${i} intact`);
        assert.equal(p.dup, false);
        if (p.qos === 1) {
          assert.ok(p.packetId !== undefined && !ids.has(p.packetId), `packet ${i} has its own id`);
          ids.add(p.packetId);
        }
      });
      assert.equal(ids.size, N - N / 3);
      // About 1 MB in segments of at most 256 KB plus the large packet on its own: a handful
      // of writes, not one per packet.
      assert.ok(chunks <= 12, `${chunks} writes for one turn's output`);
      sub.end();
      pub.end();
    });
  }
});
