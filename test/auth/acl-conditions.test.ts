// acl.conf actions with conditions, {publish, [{qos, ...}, {retain, ...}]}, with real clients:
// the PUBLISH's QoS and retain flag reach the authorization hook, and a denied one reaches no
// subscriber. Plus the parser's answers to bad conditions.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { startBroker } from '../helpers/broker.js';
import { closeMqttClients, connectMqtt, endMqtt, nextPacket, publishMqtt, subscribeMqtt } from '../helpers/clients.js';
import { AclParseError, parseAcl } from '../../src/auth/index.js';

after(() => closeMqttClients());

const ACL = `
{allow, all, {publish, [{qos, 1}, {retain, true}]}, ["cond/both"]}.
{allow, all, {publish, [{qos, [0, 1]}]}, ["cond/low/#"]}.
{allow, all, {publish, [{retain, false}]}, ["cond/noretain"]}.
{allow, all, {subscribe, [{qos, 0}]}, ["sub/q0"]}.
{allow, all, subscribe, ["cond/#"]}.
{deny, all}.
`;

async function ackCode(client: MqttClient, topic: string, payload: string, qos: 1 | 2, retain: boolean): Promise<number> {
  const ack = nextPacket(client, qos === 1 ? 'puback' : 'pubrec');
  client.publish(topic, payload, { qos, retain }, () => {});
  return (await ack as unknown as { reasonCode?: number }).reasonCode ?? 0;
}

test('{publish, [{qos, ...}, {retain, ...}]}: only matching PUBLISHes pass; the cache keeps QoS/retain apart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-aclcond-'));
  const path = join(dir, 'acl.conf');
  writeFileSync(path, ACL);
  const b = await startBroker({ authorization: { no_match: 'deny', sources: { f: { type: 'file', path } } } });
  try {
    const sub = await connectMqtt(b.port, { clientId: 'watch', protocolVersion: 5 });
    await subscribeMqtt(sub.client, 'cond/#', { qos: 1 });
    const pub = await connectMqtt(b.port, { clientId: 'pub', protocolVersion: 5 });
    const c = pub.client;
    // The same topic twice with different QoS/retain: a cached decision must not leak.
    assert.equal(await ackCode(c, 'cond/both', 'ok-q1r', 1, true), 0);
    assert.equal(await ackCode(c, 'cond/both', 'no-q1', 1, false), 0x87);
    assert.equal(await ackCode(c, 'cond/both', 'no-q2r', 2, true), 0x87);
    assert.equal(await ackCode(c, 'cond/low/a', 'ok-low1', 1, false), 0);
    assert.equal(await ackCode(c, 'cond/low/a', 'no-low2', 2, false), 0x87);
    assert.equal(await ackCode(c, 'cond/noretain', 'no-ret', 1, true), 0x87);
    assert.equal(await ackCode(c, 'cond/noretain', 'ok-nr', 1, false), 0);
    await publishMqtt(c, 'cond/low/a', 'ok-q0', { qos: 0 });
    await publishMqtt(c, 'cond/low/a', 'end', { qos: 1 });
    const got = await sub.inbox.waitPayload('end');
    // The retained cond/both message is delivered to the live subscriber with retain 0.
    assert.deepEqual(got.map((m) => m.payload.toString()).sort(), ['end', 'ok-low1', 'ok-nr', 'ok-q0', 'ok-q1r'].sort());
    // {subscribe, [{qos, 0}]}: QoS 0 granted, QoS 1 refused (0x87; 3.1.1 0x80).
    const s1 = nextPacket(c, 'suback');
    c.subscribe({ 'sub/q0': { qos: 0 } }, () => {});
    assert.deepEqual((await s1 as unknown as { granted: number[] }).granted, [0]);
    const s2 = nextPacket(c, 'suback');
    c.subscribe({ 'sub/q0': { qos: 1 } }, () => {});
    assert.deepEqual((await s2 as unknown as { granted: number[] }).granted, [0x87]);
    const v3 = await connectMqtt(b.port, { clientId: 'v3', protocolVersion: 4 });
    const s3 = nextPacket(v3.client, 'suback');
    v3.client.subscribe({ 'sub/q0': { qos: 1 } }, () => {});
    assert.deepEqual((await s3 as unknown as { granted: number[] }).granted, [0x80]);
    for (const x of [sub.client, c, v3.client]) await endMqtt(x);
  } finally {
    await b.stop();
  }
});

test('acl.conf conditions: parsed, and bad ones named with line and column', () => {
  const rules = parseAcl('acl.conf', ACL);
  assert.deepEqual([rules[0]!.action, rules[0]!.qos, rules[0]!.retain], ['publish', [1], true]);
  assert.deepEqual(rules[1]!.qos, [0, 1]);
  assert.equal(rules[4]!.qos, undefined);
  const bad = (text: string, re: RegExp): void => {
    assert.throws(() => parseAcl('acl.conf', text), (err: unknown) => err instanceof AclParseError && re.test(err.message));
  };
  bad('{allow, all, {publish, [{qos, 3}]}, ["t"]}.', /acl\.conf:1:\d+: expected a QoS: 0, 1 or 2/);
  bad('{allow, all, {publish, [{retain, maybe}]}, ["t"]}.', /expected true, false or all after retain/);
  bad('{allow, all, {publish, [{color, red}]}, ["t"]}.', /unknown condition 'color'/);
  bad('\n{allow, all, {publish, qos}, ["t"]}.', /acl\.conf:2:\d+: expected a list of conditions/);
});
