// The shared value syntaxes: durations, sizes, binds and rates, good and bad.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValueParseError, parseBind, parseByteSize, parseDuration, parseRate } from '../../src/config/index.js';

test('parseDuration: units resolve to milliseconds', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('15s'), 15_000);
  assert.equal(parseDuration('1m'), 60_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('1d'), 86_400_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration(' 0s '), 0);
});

test('parseDuration: a bare integer is milliseconds, as in EMQX', () => {
  assert.equal(parseDuration(30), 30);
  assert.equal(parseDuration('30'), 30);
});

test('parseDuration: infinity', () => {
  assert.equal(parseDuration('infinity'), Infinity);
  assert.equal(parseDuration('Infinity'), Infinity);
  assert.equal(parseDuration(Infinity), Infinity);
});

test('parseDuration: rejects bad input with a reason', () => {
  for (const bad of ['15x', '', 's', '15 s', '-1s', '1.5', '0.5ms', '1S', 'never', -5, 1.5, NaN]) {
    assert.throws(() => parseDuration(bad), ValueParseError, `${String(bad)} should be rejected`);
  }
  assert.throws(() => parseDuration('15x'), /unknown unit "x"/);
  assert.throws(() => parseDuration('1M'), /unknown unit "M"/);
});

test('parseByteSize: units resolve to bytes, KB = 1024', () => {
  assert.equal(parseByteSize('1024'), 1024);
  assert.equal(parseByteSize(1024), 1024);
  assert.equal(parseByteSize('64KB'), 65_536);
  assert.equal(parseByteSize('1MB'), 1_048_576);
  assert.equal(parseByteSize('1mb'), 1_048_576);
  assert.equal(parseByteSize('1GB'), 1_073_741_824);
  assert.equal(parseByteSize('10B'), 10);
  assert.equal(parseByteSize('1.5KB'), 1536);
  assert.equal(parseByteSize('infinity'), Infinity);
});

test('parseByteSize: rejects bad input', () => {
  for (const bad of ['1TB', 'MB', '', '-1', '1.5', '0.1B', 'big', -1, 2.5]) {
    assert.throws(() => parseByteSize(bad), ValueParseError, `${String(bad)} should be rejected`);
  }
  assert.throws(() => parseByteSize('1TB'), /unknown unit "TB"/);
});

test('parseBind: host:port forms', () => {
  assert.deepEqual(parseBind('0.0.0.0:1883'), { host: '0.0.0.0', port: 1883 });
  assert.deepEqual(parseBind('127.0.0.1:11883'), { host: '127.0.0.1', port: 11883 });
  assert.deepEqual(parseBind('[::1]:1883'), { host: '::1', port: 1883 });
  assert.deepEqual(parseBind('[::]:8883'), { host: '::', port: 8883 });
  assert.deepEqual(parseBind('localhost:1883'), { host: 'localhost', port: 1883 });
  assert.deepEqual(parseBind(':1883'), { host: '0.0.0.0', port: 1883 });
  assert.deepEqual(parseBind({ host: '[::1]', port: 0 }), { host: '::1', port: 0 });
});

test('parseBind: a port alone listens on 0.0.0.0', () => {
  assert.deepEqual(parseBind('1883'), { host: '0.0.0.0', port: 1883 });
  assert.deepEqual(parseBind(1883), { host: '0.0.0.0', port: 1883 });
  assert.deepEqual(parseBind(0), { host: '0.0.0.0', port: 0 });
  assert.deepEqual(parseBind(65535), { host: '0.0.0.0', port: 65535 });
});

test('parseBind: rejects bad addresses and ports', () => {
  const cases: [unknown, RegExp][] = [
    ['65536', /out of range 0\.\.65535/],
    [70000, /out of range/],
    ['1.2.3.4:99999', /out of range/],
    ['::1:1883', /brackets/],
    ['[1.2.3.4]:1883', /not an IPv6 address/],
    ['999.1.1.1:1883', /not an IPv4 address/],
    ['bad_host!:1883', /not a host name/],
    ['localhost', /expected host:port/],
    ['localhost:http', /not a number/],
    [-1, /not a number|out of range/],
    [1883.5, /whole number/],
    [true, /not a string or number/],
  ];
  for (const [input, why] of cases) {
    assert.throws(() => parseBind(input as string), why, `${String(input)}`);
  }
});

test('parseRate: count and byte rates over a period', () => {
  assert.deepEqual(parseRate('1000/s'), { amount: 1000, periodMs: 1000 });
  assert.deepEqual(parseRate('10MB/2s'), { amount: 10 * 1024 * 1024, periodMs: 2000 });
  assert.deepEqual(parseRate('500/100ms'), { amount: 500, periodMs: 100 });
  assert.deepEqual(parseRate('10000/60m'), { amount: 10000, periodMs: 3_600_000 });
  assert.deepEqual(parseRate('10'), { amount: 10, periodMs: 1000 });
  assert.deepEqual(parseRate('100KB'), { amount: 102_400, periodMs: 1000 });
  assert.deepEqual(parseRate(50), { amount: 50, periodMs: 1000 });
});

test('parseRate: infinity is no limit (null)', () => {
  assert.equal(parseRate('infinity'), null);
  assert.equal(parseRate(Infinity), null);
});

test('parseRate: rejects bad rates', () => {
  for (const bad of ['0/s', '/s', 'fast', '10/', '10/0s', '10/2', '10/x', '10/s/s', -1, 0]) {
    assert.throws(() => parseRate(bad), ValueParseError, `${String(bad)} should be rejected`);
  }
});
