// acl.conf parsing (EMQX 5.x and 4.x syntax) and rule matching, without a broker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AclParseError, DEFAULT_ACL_CONF, parseAcl, topicMatches, type AclRule } from '../../src/auth/index.js';
import { ruleMatches } from '../../src/auth/acl.js';

const client = (over: Partial<{ clientId: string; username: string | undefined; peerHost: string }> = {}) =>
  ({ clientId: 'c1', username: 'u1', peerHost: '10.1.2.3', ...over });

function decide(rules: AclRule[], c: ReturnType<typeof client>, action: 'publish' | 'subscribe', topic: string): string {
  for (const r of rules) if (ruleMatches(r, c, action, topic)) return r.permission;
  return 'nomatch';
}

test('the default acl.conf of EMQX 5.8 parses and decides as EMQX does', () => {
  const rules = parseAcl('acl.conf', DEFAULT_ACL_CONF);
  assert.equal(rules.length, 4);
  assert.equal(decide(rules, client({ username: 'dashboard' }), 'subscribe', '$SYS/brokers'), 'allow');
  assert.equal(decide(rules, client({ peerHost: '127.0.0.1' }), 'subscribe', '#'), 'allow');
  assert.equal(decide(rules, client({ peerHost: '::ffff:127.0.0.1' }), 'subscribe', '#'), 'allow');
  assert.equal(decide(rules, client(), 'subscribe', '#'), 'deny');
  assert.equal(decide(rules, client(), 'subscribe', '+/#'), 'deny');
  assert.equal(decide(rules, client(), 'subscribe', '$SYS/#'), 'deny');
  assert.equal(decide(rules, client(), 'subscribe', 'a/#'), 'allow');
  assert.equal(decide(rules, client(), 'publish', 'anything'), 'allow');
});

test('who: username/clientid strings and regexes, ipaddr(s) CIDR, and/or; 4.x user/client/pubsub', () => {
  const rules = parseAcl('t.conf', `
    %% comments are skipped
    {allow, {'and', [{username, {re, "^dev-"}}, {ipaddr, "10.0.0.0/8"}]}, publish, ["x"]}.
    {allow, {'or', [{clientid, "c9"}, {ipaddrs, ["192.168.0.0/16", "2001:db8::/32"]}]}, subscribe, ["y"]}.
    {allow, {user, "old"}, pubsub, ["z"]}.
    {deny, all}.
  `);
  assert.equal(decide(rules, client({ username: 'dev-1' }), 'publish', 'x'), 'allow');
  assert.equal(decide(rules, client({ username: 'dev-1', peerHost: '11.0.0.1' }), 'publish', 'x'), 'deny');
  assert.equal(decide(rules, client({ clientId: 'c9' }), 'subscribe', 'y'), 'allow');
  assert.equal(decide(rules, client({ peerHost: '192.168.4.4' }), 'subscribe', 'y'), 'allow');
  assert.equal(decide(rules, client({ peerHost: '2001:db8::5' }), 'subscribe', 'y'), 'allow');
  assert.equal(decide(rules, client({ username: 'old' }), 'publish', 'z'), 'allow');
  assert.equal(decide(rules, client({ username: 'old' }), 'subscribe', 'z'), 'allow');
  assert.equal(decide(rules, client({ username: undefined }), 'publish', 'x'), 'deny');
});

test('topics: wildcards, {eq, ...}, all, ${username}/${clientid} and %u/%c placeholders', () => {
  const rules = parseAcl('t.conf', `
    {allow, all, publish, ["\${clientid}/up/#", "users/%u/+"]}.
    {allow, all, subscribe, [{eq, "t/#"}, "\${username}/down"]}.
    {allow, {username, "root"}, all, [all]}.
    {deny, all}.
  `);
  assert.equal(decide(rules, client(), 'publish', 'c1/up/a/b'), 'allow');
  assert.equal(decide(rules, client(), 'publish', 'c2/up/a'), 'deny');
  assert.equal(decide(rules, client(), 'publish', 'users/u1/x'), 'allow');
  assert.equal(decide(rules, client({ username: undefined }), 'publish', 'users//x'), 'deny');
  assert.equal(decide(rules, client(), 'subscribe', 't/#'), 'allow');
  assert.equal(decide(rules, client(), 'subscribe', 't/a'), 'deny');
  assert.equal(decide(rules, client(), 'subscribe', 'u1/down'), 'allow');
  assert.equal(decide(rules, client({ username: 'root' }), 'subscribe', '$SYS/x'), 'allow');
});

test('topic matching follows emqx_topic:match on words', () => {
  assert.equal(topicMatches('a/b', 'a/+'), true);
  assert.equal(topicMatches('a', 'a/#'), true);
  assert.equal(topicMatches('a/b/c', 'a/+'), false);
  assert.equal(topicMatches('$SYS/x', '#'), false);
  assert.equal(topicMatches('$SYS/x', '+/x'), false);
  assert.equal(topicMatches('$SYS/x', '$SYS/#'), true);
  // A client's filter against the rule's, word by word (EMQX: a rule's + covers a requested #).
  assert.equal(topicMatches('a/#', 'a/+'), true);
  assert.equal(topicMatches('#', 'a/#'), false);
  assert.equal(topicMatches('a/+', 'a/b'), false);
});

test('syntax and grammar errors name the file, line, column and what was expected', () => {
  const err = (text: string): string => {
    try {
      parseAcl('/etc/acl.conf', text);
    } catch (e) {
      assert.ok(e instanceof AclParseError);
      return e.message;
    }
    assert.fail('no error');
  };
  assert.equal(err('{allow, all}.\n{allow, all}'), '/etc/acl.conf:2:13: expected a "." after the rule, got the end of the file');
  assert.equal(err('{allow, all, publish ["t"]}.'), '/etc/acl.conf:1:22: expected "," or "}", got "["');
  assert.equal(err('\n  {permit, all}.'), '/etc/acl.conf:2:4: expected allow or deny as the first element of the rule');
  assert.match(err('{allow, {username, 42}, publish, ["t"]}.'), /^\/etc\/acl\.conf:1:20: expected "username" or \{re, "regex"\}/);
  assert.match(err('{allow, all, publish_all, ["t"]}.'), /1:14: expected an action: publish, subscribe, all or \{publish, \[\{qos, 1\}, \{retain, true\}\]\}/);
  assert.match(err('{allow, {ipaddr, "10.0.0.300/8"}, all, ["t"]}.'), /1:18: expected an IP address or CIDR/);
  assert.match(err('{allow, all, publish, "t"}.'), /1:23: expected a list of topics/);
  assert.match(err('{allow, all, publish, ["t]}.'), /1:24: unterminated string/);
  assert.match(err('{allow, all, {publish, [{qos, 5}]}, ["t"]}.'), /1:31: expected a QoS: 0, 1 or 2/);
  assert.match(err('allow.'), /1:1: expected a rule such as \{allow, all\}\./);
  assert.match(err('{allow, {username, {re, "("}}, all, ["t"]}.'), /bad regular expression/);
});
