/**
 * 09-bad-input: hostile and broken bytes on a live socket. Each case checks what the client
 * gets (CONNACK / DISCONNECT with the reason, or a plain close), the log line (reason code
 * and hex excerpt), the listener's shutdown count by reason, and that the broker then still
 * serves other clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encode, type ProtocolVersion } from '../../src/codec/index.js';
import { RawClient, VERSIONS, assertServing, connected, disconnectReasons, logEvents, shutdownCount, startBroker, waitFor, type TestBroker } from '../helpers/broker.js';

const connectBytes = (v: ProtocolVersion, clientId: string): Buffer =>
  encode({ type: 1, protocolName: 'MQTT', protocolVersion: v, cleanStart: true, keepAlive: 60, clientId }, v);

describe('09-bad-input', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ mqtt: { idle_timeout: '300ms', max_packet_size: '1KB' } });
  });
  after(() => b.stop());

  /** Frame-error log lines added since `from`. */
  const frameErrors = (from: number): Array<Record<string, unknown>> => logEvents(b.logs, 'frame_error').slice(from);

  /**
   * The log line about a connection closed before CONNECT for bad bytes: `frame_error`
   * (malformed) or `protocol_error` (a first packet that is not CONNECT [MQTT-3.1.0-1]),
   * found by the client's own port.
   */
  const badInputLine = (c: RawClient): Record<string, unknown> | undefined => {
    const peer = `127.0.0.1:${(c.stream as import('node:net').Socket).localPort}`;
    return b.logs.records().find((r) => (r.event === 'frame_error' || r.event === 'protocol_error') && r.peername === peer);
  };

  for (const [name, bytes] of [
    ['garbage bytes', Buffer.from([0x00, 0xde, 0xad, 0xbe, 0xef])],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')],
    ['a TLS ClientHello', Buffer.from('160301002e0100002a0303', 'hex')],
    ['a PUBLISH before CONNECT', encode({ type: 3, topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, 4)],
  ] as const) {
    test(`${name} before CONNECT: closed without an answer, logged with the bytes in hex, counted`, async () => {
      const counts = new Map(b.petrel.listeners[0]!.shutdownCounts);
      const c = await RawClient.tcp(b.port, 4);
      const local = (c.stream as import('node:net').Socket).localPort;
      c.sendBytes(bytes);
      await c.waitClosed();
      assert.deepEqual(c.received, [], 'no CONNACK: the protocol level is unknown');
      await waitFor(() => badInputLine(c) !== undefined, 2000, 'log line');
      const line = badInputLine(c)!;
      const reason = line.event === 'frame_error' ? (line.reason_code === 'packet_too_large' ? 'packet_too_large' : 'frame_error') : 'protocol_error';
      const hex = String(line.hex);
      assert.ok(hex.length >= 2 && (bytes.toString('hex').startsWith(hex) || hex.startsWith(bytes.toString('hex'))), `hex ${hex}`);
      await waitFor(() => shutdownCount(b, reason) === (counts.get(reason) ?? 0) + 1, 2000, `${reason} counted`);
      // The disconnect line names the same reason.
      assert.ok(logEvents(b.logs, 'client_disconnected').some((r) => r.peername === `127.0.0.1:${local}` && r.reason === reason));
      await assertServing(b.port);
    });
  }

  test('half a CONNECT, then silence: closed by idle_timeout', async () => {
    const before = shutdownCount(b, 'idle_timeout');
    const c = await RawClient.tcp(b.port, 4);
    c.sendBytes(connectBytes(4, 'half').subarray(0, 6));
    await c.waitClosed(3000);
    assert.deepEqual(c.received, []);
    await waitFor(() => shutdownCount(b, 'idle_timeout') === before + 1, 2000, 'idle_timeout counted');
    await assertServing(b.port);
  });

  for (const [name, bytes] of [
    ['256 MB (the largest 4-byte length)', [0x10, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x04, 0x4d, 0x51]],
    ['1 GB (a 5-byte length)', [0x10, 0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x04]],
  ] as const) {
    test(`a CONNECT claiming ${name}: packet_too_large, logged with a hex excerpt, before any body`, async () => {
      const logsBefore = logEvents(b.logs, 'frame_error').length;
      const before = shutdownCount(b, 'packet_too_large');
      const c = await RawClient.tcp(b.port, 5);
      c.sendBytes([...bytes]);
      await c.waitClosed();
      await waitFor(() => shutdownCount(b, 'packet_too_large') === before + 1, 2000, 'packet_too_large counted');
      const line = frameErrors(logsBefore)[0]!;
      assert.equal(line.reason_code, 'packet_too_large');
      // The excerpt is the fixed header read so far (the decoder may stop as soon as the
      // length is known to exceed the limit).
      const hex = String(line.hex);
      assert.ok(hex.startsWith('10') && hex.length >= 4 && Buffer.from(bytes).toString('hex').startsWith(hex), `hex ${hex}`);
      // The protocol level is not known yet: no CONNACK (or CONNACK 0x95) is acceptable.
      assert.ok(c.received.every((p) => p.type === 2 && p.reasonCode === 0x95));
      await assertServing(b.port, 5);
    });
  }

  test('a whole CONNECT over mqtt.max_packet_size: closed with packet_too_large', async () => {
    const before = shutdownCount(b, 'packet_too_large');
    const c = await RawClient.tcp(b.port, 5);
    c.send({ type: 1, protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 60, clientId: 'big', password: Buffer.alloc(2000), username: 'u' });
    await c.waitClosed();
    assert.ok(c.received.every((p) => p.type === 2 && p.reasonCode === 0x95));
    await waitFor(() => shutdownCount(b, 'packet_too_large') === before + 1, 2000, 'packet_too_large counted');
    await assertServing(b.port, 5);
  });

  for (const v of VERSIONS) {
    describe(`protocol ${v}`, () => {
      test('an oversized PUBLISH after CONNECT: DISCONNECT 0x95 (MQTT 5) and closed', async () => {
        const before = shutdownCount(b, 'packet_too_large');
        const c = await connected(b.port, v, `big-pub-${v}`);
        c.send({ type: 3, topic: 'big', payload: Buffer.alloc(2000), qos: 0, retain: false, dup: false });
        if (v === 5) assert.equal((await c.next(14)).reasonCode, 0x95);
        await c.waitClosed();
        await waitFor(() => disconnectReasons(b.logs, `big-pub-${v}`).includes('packet_too_large'));
        assert.equal(shutdownCount(b, 'packet_too_large'), before + 1);
        await assertServing(b.port, v);
      });

      for (const [name, bytes] of [
        ['SUBSCRIBE with flags 0 instead of 2', [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00]],
        ['PUBREL with flags 0 instead of 2', [0x60, 0x02, 0x00, 0x01]],
        ['PUBLISH with QoS 3', [0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]],
        ['PINGREQ with a flag set', [0xc1, 0x00]],
        ['reserved packet type 0', [0x00, 0x00]],
      ] as const) {
        test(`${name}: malformed (MQTT 5 DISCONNECT 0x81), frame_error`, async () => {
          const id = `flags-${v}-${name.replace(/\W+/g, '-')}`;
          const before = shutdownCount(b, 'frame_error');
          const c = await connected(b.port, v, id);
          c.sendBytes([...bytes]);
          if (v === 5) assert.equal((await c.next(14)).reasonCode, 0x81);
          await c.waitClosed();
          await waitFor(() => disconnectReasons(b.logs, id).includes('frame_error'));
          assert.equal(shutdownCount(b, 'frame_error'), before + 1);
          const line = logEvents(b.logs, 'frame_error').find((r) => r.clientid === id)!;
          // The excerpt starts at the packet's first byte.
          assert.equal(typeof line.hex, 'string');
          assert.ok((line.hex as string).length >= 2 && Buffer.from(bytes).toString('hex').startsWith(line.hex as string), `hex ${line.hex}`);
        });
      }

      test('a message accepted before bad bytes in the same chunk is still delivered', async () => {
        const s = await connected(b.port, v, `before-bad-sub-${v}`);
        await s.subscribe(`bb/${v}`, 1);
        const c = await connected(b.port, v, `before-bad-${v}`);
        const good = encode({ type: 3, topic: `bb/${v}`, payload: Buffer.from('kept'), qos: 1, retain: false, dup: false, packetId: 1 }, v);
        c.sendBytes(Buffer.concat([good, Buffer.from([0x00, 0x00])]));
        // The PUBACK for the good message goes out before the close.
        assert.equal((await c.next(4)).packetId, 1);
        await c.waitClosed();
        assert.equal((await s.next(3)).payload.toString(), 'kept');
        s.destroy();
      });

      test('a CONNECT split into single bytes is decoded', async () => {
        const c = await RawClient.tcp(b.port, v);
        const bytes = connectBytes(v, `split-${v}`);
        for (const byte of bytes) {
          c.sendBytes([byte]);
          await new Promise((r) => setImmediate(r));
        }
        assert.equal((await c.next(2)).reasonCode, 0);
        c.destroy();
      });
    });
  }

  for (const v of VERSIONS) {
    test(`protocol ${v}: CONNECT with the reserved flag set: malformed (MQTT 5 CONNACK 0x81)`, async () => {
      const bytes = Buffer.from(connectBytes(v, `reserved-${v}`));
      const flagsAt = 2 + 6 + 1; // fixed header, protocol name, level
      bytes[flagsAt] = bytes[flagsAt]! | 0x01;
      const c = await RawClient.tcp(b.port, v);
      c.sendBytes(bytes);
      await c.waitClosed();
      // MQTT 5 answers a malformed CONNECT whose level it read with CONNACK 0x81 [MQTT-4.13.1-1];
      // 3.1.1 has no return code for it and just closes.
      assert.deepEqual(c.received.map((p) => [p.type, 'reasonCode' in p ? p.reasonCode : null]), v === 5 ? [[2, 0x81]] : []);
      await assertServing(b.port, v);
    });
  }

  test('the per-listener shutdown counts add up to the closes seen', () => {
    const counts = b.petrel.listeners[0]!.shutdownCounts;
    for (const reason of ['frame_error', 'packet_too_large', 'idle_timeout']) assert.ok((counts.get(reason) ?? 0) > 0, reason);
    for (const reason of counts.keys()) {
      assert.ok(
        ['normal', 'tcp_closed', 'idle_timeout', 'frame_error', 'packet_too_large', 'protocol_error'].includes(reason),
        `unexpected shutdown reason ${reason}`,
      );
    }
  });
});
