/**
 * EMQX's `acl.conf`: a file of Erlang terms, one rule per term, each ending with a dot.
 * Both the 5.x grammar (emqx 5.8 apps/emqx_auth/etc/acl.conf) and the 4.x one are read:
 *
 *   rule   :: {Perm, Who, Action, [Topic]} | {Perm, all}
 *   Perm   :: allow | deny
 *   Who    :: all | {username|user, "name" | {re, "regex"}} | {clientid|client, "id" | {re, "regex"}}
 *           | {ipaddr, "CIDR"} | {ipaddrs, ["CIDR", ...]} | {'and', [Who]} | {'or', [Who]}
 *   Action :: publish | subscribe | all | pubsub (4.x)
 *           | {publish | subscribe | all, [{qos, 0..2 | [0..2]}, {retain, true | false | all}]}
 *   Topic  :: "filter" (wildcards match) | {eq, "filter"} (only that exact filter) | all
 *             placeholders ${username} ${clientid} (4.x %u %c) in topics
 *
 * A syntax or grammar error throws AclParseError naming the file, line and column and what
 * was expected. Parsing happens once (start, reload); matching uses the compiled rules.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export class AclParseError extends Error {
  constructor(readonly file: string, readonly line: number, readonly column: number, what: string) {
    super(`${file}:${line}:${column}: ${what}`);
  }
}

/** The default acl.conf EMQX 5.8 ships (used for a `file` source with an empty `path`). */
export const DEFAULT_ACL_CONF = `%% The default acl.conf of EMQX 5.8.
%% In production, change the last rule to {deny, all}. and set authorization.no_match = "deny".
{allow, {username, {re, "^dashboard$"}}, subscribe, ["$SYS/#"]}.

{allow, {ipaddr, "127.0.0.1"}, all, ["$SYS/#", "#"]}.

{deny, all, subscribe, ["$SYS/#", {eq, "#"}, {eq, "+/#"}]}.

{allow, all}.
`;

// ---------------------------------------------------------------- terms

type Term =
  | { k: 'atom'; v: string; line: number; col: number }
  | { k: 'str'; v: string; line: number; col: number }
  | { k: 'int'; v: number; line: number; col: number }
  | { k: 'tuple'; v: Term[]; line: number; col: number }
  | { k: 'list'; v: Term[]; line: number; col: number };

interface Token {
  t: '{' | '}' | '[' | ']' | ',' | '.' | 'atom' | 'str' | 'int' | 'eof';
  v: string;
  line: number;
  col: number;
}

function describe(tok: Token): string {
  if (tok.t === 'eof') return 'the end of the file';
  if (tok.t === 'str') return `the string ${JSON.stringify(tok.v)}`;
  if (tok.t === 'atom') return `'${tok.v}'`;
  if (tok.t === 'int') return tok.v;
  return `"${tok.t}"`;
}

function tokenize(file: string, text: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let lineStart = 0;
  let i = 0;
  const err = (at: number, what: string): never => {
    throw new AclParseError(file, line, at - lineStart + 1, what);
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '%') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    const col = i - lineStart + 1;
    if ('{}[],.'.includes(c)) {
      out.push({ t: c as Token['t'], v: c, line, col });
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const startLine = line;
      let v = '';
      i++;
      for (;;) {
        if (i >= text.length) {
          line = startLine;
          return err(lineStart + col - 1, `unterminated ${c === '"' ? 'string' : 'quoted atom'}: expected a closing ${c}`);
        }
        const d = text[i]!;
        if (d === c) break;
        if (d === '\\') {
          const e = text[i + 1];
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e ?? '';
          i += 2;
          continue;
        }
        if (d === '\n') {
          line++;
          lineStart = i + 1;
        }
        v += d;
        i++;
      }
      i++;
      out.push({ t: c === '"' ? 'str' : 'atom', v, line: startLine, col });
      continue;
    }
    if (/[a-z]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[A-Za-z0-9_@]/.test(text[j]!)) j++;
      out.push({ t: 'atom', v: text.slice(i, j), line, col });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[0-9]/.test(text[j]!)) j++;
      out.push({ t: 'int', v: text.slice(i, j), line, col });
      i = j;
      continue;
    }
    err(i, `unexpected character ${JSON.stringify(c)}: expected a rule such as {allow, all}.`);
  }
  out.push({ t: 'eof', v: '', line, col: i - lineStart + 1 });
  return out;
}

/** Reads the terms of the file, each followed by a dot. */
function readTerms(file: string, text: string): Term[] {
  const toks = tokenize(file, text);
  let p = 0;
  const fail = (tok: Token, expected: string): never => {
    throw new AclParseError(file, tok.line, tok.col, `expected ${expected}, got ${describe(tok)}`);
  };
  const term = (): Term => {
    const tok = toks[p++]!;
    switch (tok.t) {
      case 'atom': return { k: 'atom', v: tok.v, line: tok.line, col: tok.col };
      case 'str': return { k: 'str', v: tok.v, line: tok.line, col: tok.col };
      case 'int': return { k: 'int', v: Number(tok.v), line: tok.line, col: tok.col };
      case '{':
      case '[': {
        const close = tok.t === '{' ? '}' : ']';
        const items: Term[] = [];
        if (toks[p]!.t === close) p++;
        else {
          for (;;) {
            items.push(term());
            const sep = toks[p++]!;
            if (sep.t === close) break;
            if (sep.t !== ',') fail(sep, `"," or "${close}"`);
          }
        }
        return { k: tok.t === '{' ? 'tuple' : 'list', v: items, line: tok.line, col: tok.col };
      }
      default:
        return fail(tok, 'a term (a {tuple}, [list], atom or "string")');
    }
  };
  const out: Term[] = [];
  while (toks[p]!.t !== 'eof') {
    const first = toks[p]!;
    if (first.t !== '{') fail(first, 'a rule such as {allow, all}.');
    out.push(term());
    const dot = toks[p++]!;
    if (dot.t !== '.') fail(dot, 'a "." after the rule');
  }
  return out;
}

// ---------------------------------------------------------------- rules

/** What the rules look at: the client (from the hooks' ClientInfo). */
export interface AclClient {
  readonly clientId: string;
  readonly username: string | undefined;
  readonly peerHost: string;
}

export type Who =
  | { kind: 'all' }
  | { kind: 'username' | 'clientid'; equals?: string; re?: RegExp }
  | { kind: 'ipaddr'; list: BlockList; text: string }
  | { kind: 'and' | 'or'; of: Who[] };

export type AclAction = 'publish' | 'subscribe' | 'all';

export interface TopicMatch {
  /** Exact comparison ({eq, ...}) rather than wildcard matching. */
  readonly eq: boolean;
  /** `all` matches every topic, $-topics too. */
  readonly all: boolean;
  readonly text: string;
  readonly hasPlaceholder: boolean;
}

export interface AclRule {
  readonly permission: 'allow' | 'deny';
  readonly who: Who;
  readonly action: AclAction;
  /**
   * `{qos, ...}` of the action: the QoS values it applies to (a PUBLISH's QoS, a subscription's
   * requested QoS); undefined = any.
   */
  readonly qos?: readonly number[];
  /** `{retain, true|false}` of the action (PUBLISH only); undefined = either. */
  readonly retain?: boolean;
  readonly topics: readonly TopicMatch[] | 'all';
  /** Where it came from, for logs: `file:line`. */
  readonly source: string;
}

const PLACEHOLDER = /\$\{(username|clientid)\}|%[uc]/;

function ruleError(file: string, t: Term, what: string): never {
  throw new AclParseError(file, t.line, t.col, what);
}

function stringOrRe(file: string, t: Term, kind: 'username' | 'clientid'): Who {
  if (t.k === 'str') return { kind, equals: t.v };
  if (t.k === 'tuple' && t.v.length === 2 && t.v[0]!.k === 'atom' && t.v[0]!.v === 're' && t.v[1]!.k === 'str') {
    try {
      return { kind, re: new RegExp(t.v[1]!.v) };
    } catch (err) {
      return ruleError(file, t.v[1]!, `bad regular expression: ${(err as Error).message}`);
    }
  }
  return ruleError(file, t, `expected "${kind}" or {re, "regex"} after ${kind}`);
}

function addCidr(file: string, list: BlockList, t: Term): void {
  if (t.k !== 'str') ruleError(file, t, 'expected an address "10.0.0.0/8" or "127.0.0.1"');
  const [addr, bits, extra] = t.v.split('/');
  const v4 = isIPv4(addr ?? '');
  if (extra !== undefined || (!v4 && !isIPv6(addr ?? ''))) ruleError(file, t, `expected an IP address or CIDR, got ${JSON.stringify(t.v)}`);
  const max = v4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!/^\d+$/.test(bits ?? String(max)) || prefix > max) ruleError(file, t, `bad prefix length in ${JSON.stringify(t.v)} (0..${max})`);
  list.addSubnet(addr!, prefix, v4 ? 'ipv4' : 'ipv6');
}

function parseWho(file: string, t: Term): Who {
  if (t.k === 'atom' && t.v === 'all') return { kind: 'all' };
  if (t.k === 'tuple' && t.v.length >= 2 && t.v[0]!.k === 'atom') {
    const tag = t.v[0]!.v;
    const arg = t.v[1]!;
    if (t.v.length === 2) {
      if (tag === 'username' || tag === 'user') return stringOrRe(file, arg, 'username');
      if (tag === 'clientid' || tag === 'client') return stringOrRe(file, arg, 'clientid');
      if (tag === 'ipaddr') {
        const list = new BlockList();
        addCidr(file, list, arg);
        return { kind: 'ipaddr', list, text: (arg as { v: string }).v };
      }
      if (tag === 'ipaddrs') {
        if (arg.k !== 'list') ruleError(file, arg, 'expected a list of addresses after ipaddrs');
        const list = new BlockList();
        for (const a of (arg as { v: Term[] }).v) addCidr(file, list, a);
        return { kind: 'ipaddr', list, text: (arg as { v: Term[] }).v.map((a) => (a as { v: string }).v).join(',') };
      }
      if (tag === 'and' || tag === 'or') {
        if (arg.k !== 'list') ruleError(file, arg, `expected a list of conditions after '${tag}'`);
        return { kind: tag, of: (arg as { v: Term[] }).v.map((x) => parseWho(file, x)) };
      }
    }
    if (tag === 'client_attr' || tag === 'zone' || tag === 'listener') {
      ruleError(file, t, `{${tag}, ...} conditions are not supported yet`);
    }
  }
  return ruleError(file, t, 'expected who: all, {username, ...}, {clientid, ...}, {ipaddr, "CIDR"}, {ipaddrs, [...]}, {\'and\', [...]} or {\'or\', [...]}');
}

interface ParsedAction {
  action: AclAction;
  qos?: number[];
  retain?: boolean;
}

function qosOf(file: string, t: Term): number {
  if (t.k !== 'int' || t.v > 2) return ruleError(file, t, 'expected a QoS: 0, 1 or 2');
  return t.v;
}

function parseAction(file: string, t: Term): ParsedAction {
  if (t.k === 'atom') {
    if (t.v === 'publish' || t.v === 'subscribe' || t.v === 'all') return { action: t.v };
    if (t.v === 'pubsub') return { action: 'all' };
  }
  if (t.k === 'tuple' && t.v.length === 2 && t.v[0]!.k === 'atom' && ['publish', 'subscribe', 'all'].includes(t.v[0]!.v)) {
    const out: ParsedAction = { action: t.v[0]!.v as AclAction };
    const conds = t.v[1]!;
    if (conds.k !== 'list') return ruleError(file, conds, 'expected a list of conditions such as [{qos, 1}, {retain, true}]');
    for (const c of conds.v) {
      if (c.k !== 'tuple' || c.v.length !== 2 || c.v[0]!.k !== 'atom') return ruleError(file, c, 'expected {qos, ...} or {retain, ...}');
      const [name, val] = [c.v[0]!.v as string, c.v[1]!];
      if (name === 'qos') {
        out.qos = val.k === 'list' ? val.v.map((q) => qosOf(file, q)) : [qosOf(file, val)];
      } else if (name === 'retain') {
        if (val.k !== 'atom' || !['true', 'false', 'all'].includes(val.v)) return ruleError(file, val, 'expected true, false or all after retain');
        if (val.v !== 'all') out.retain = val.v === 'true';
      } else {
        return ruleError(file, c, `unknown condition '${name}': expected qos or retain`);
      }
    }
    return out;
  }
  return ruleError(file, t, 'expected an action: publish, subscribe, all or {publish, [{qos, 1}, {retain, true}]}');
}

function topicOf(file: string, t: Term): TopicMatch {
  if (t.k === 'str') {
    if (t.v === '') ruleError(file, t, 'empty topic');
    return { eq: false, all: false, text: t.v, hasPlaceholder: PLACEHOLDER.test(t.v) };
  }
  if (t.k === 'atom' && t.v === 'all') return { eq: false, all: true, text: '#', hasPlaceholder: false };
  if (t.k === 'tuple' && t.v.length === 2 && t.v[0]!.k === 'atom' && t.v[0]!.v === 'eq' && t.v[1]!.k === 'str') {
    return { eq: true, all: false, text: t.v[1]!.v, hasPlaceholder: PLACEHOLDER.test(t.v[1]!.v) };
  }
  return ruleError(file, t, 'expected a topic: "filter", {eq, "filter"} or all');
}

/** Parses acl.conf text; `file` names it in errors and rule sources. */
export function parseAcl(file: string, text: string): AclRule[] {
  const rules: AclRule[] = [];
  for (const t of readTerms(file, text)) {
    const items = (t as { v: Term[] }).v;
    const perm = items[0];
    if (perm === undefined || perm.k !== 'atom' || (perm.v !== 'allow' && perm.v !== 'deny')) {
      ruleError(file, perm ?? t, 'expected allow or deny as the first element of the rule');
    }
    const permission = perm.v as 'allow' | 'deny';
    const source = `${file}:${t.line}`;
    if (items.length === 2) {
      // {allow, all}. / {deny, all}. Other 2-tuples are a who with no action.
      if (items[1]!.k === 'atom' && items[1]!.v === 'all') {
        rules.push({ permission, who: { kind: 'all' }, action: 'all', topics: 'all', source });
        continue;
      }
      ruleError(file, items[1]!, 'a 2-element rule must be {allow, all} or {deny, all}; otherwise give {Permission, Who, Action, [Topics]}');
    }
    if (items.length !== 4) ruleError(file, t, `expected a rule of 4 elements {Permission, Who, Action, [Topics]}, got ${items.length}`);
    const who = parseWho(file, items[1]!);
    const { action, qos, retain } = parseAction(file, items[2]!);
    const tt = items[3]!;
    if (tt.k !== 'list') ruleError(file, tt, 'expected a list of topics such as ["t/#", {eq, "#"}]');
    const rule: AclRule = { permission, who, action, topics: (tt as { v: Term[] }).v.map((x) => topicOf(file, x)), source };
    rules.push(qos === undefined && retain === undefined ? rule : { ...rule, qos, retain });
  }
  return rules;
}

// ---------------------------------------------------------------- matching

function ipv4Of(host: string): string | null {
  if (isIPv4(host)) return host;
  if (host.startsWith('::ffff:') && isIPv4(host.slice(7))) return host.slice(7);
  return null;
}

export function whoMatches(who: Who, c: AclClient): boolean {
  switch (who.kind) {
    case 'all': return true;
    case 'username':
    case 'clientid': {
      const v = who.kind === 'username' ? c.username : c.clientId;
      if (v === undefined) return false;
      return who.re !== undefined ? who.re.test(v) : v === who.equals;
    }
    case 'ipaddr': {
      const v4 = ipv4Of(c.peerHost);
      if (v4 !== null) return who.list.check(v4, 'ipv4');
      return isIPv6(c.peerHost) && who.list.check(c.peerHost, 'ipv6');
    }
    case 'and': return who.of.every((w) => whoMatches(w, c));
    case 'or': return who.of.some((w) => whoMatches(w, c));
  }
}

/** Replaces placeholders; null when one refers to something the client does not have. */
function fill(text: string, c: AclClient): string | null {
  let missing = false;
  const out = text.replace(/\$\{(username|clientid)\}|%([uc])/g, (_m, name: string | undefined, short: string | undefined) => {
    const v = name === 'username' || short === 'u' ? c.username : c.clientId;
    if (v === undefined || v === '') missing = true;
    return v ?? '';
  });
  return missing ? null : out;
}

/**
 * EMQX's emqx_topic:match/2 on words: the client's topic (a name, or for subscribe a filter)
 * against the rule's filter. A rule's `+` matches one level whatever it holds (also a `+` or `#`
 * the client asked for); `#` the rest; wildcards in the first level do not match `$` topics.
 */
export function topicMatches(topic: string, filter: string): boolean {
  const t = topic.split('/');
  const f = filter.split('/');
  let i = 0;
  for (; i < f.length; i++) {
    const w = f[i]!;
    if (w === '#') return !(i === 0 && t[0]!.startsWith('$'));
    if (i >= t.length) return false;
    if (w === '+') {
      if (i === 0 && t[0]!.startsWith('$')) return false;
      continue;
    }
    if (w !== t[i]) return false;
  }
  return i === t.length;
}

/** True when the rule carries {qos, ...} or {retain, ...} conditions. */
export function hasConditions(rule: AclRule): boolean {
  return rule.qos !== undefined || rule.retain !== undefined;
}

/**
 * Whether `rule` decides for this client, action and topic (name or filter). `qos`/`retain`
 * are the PUBLISH's (for subscribe: the requested QoS, retain false); a conditional rule does
 * not match when they are not given.
 */
export function ruleMatches(rule: AclRule, c: AclClient, action: 'publish' | 'subscribe', topic: string, qos?: number, retain?: boolean): boolean {
  if (rule.action !== 'all' && rule.action !== action) return false;
  if (rule.qos !== undefined && (qos === undefined || !rule.qos.includes(qos))) return false;
  if (rule.retain !== undefined && action === 'publish' && retain !== rule.retain) return false;
  if (!whoMatches(rule.who, c)) return false;
  if (rule.topics === 'all') return true;
  for (const m of rule.topics) {
    if (m.all) return true;
    const want = m.hasPlaceholder ? fill(m.text, c) : m.text;
    if (want === null) continue;
    if (m.eq ? topic === want : topicMatches(topic, want)) return true;
  }
  return false;
}

// ---------------------------------------------------------------- rules from backends

/** A rule as backends give it: a SQL row, a Redis hash entry, an `acl` claim entry. */
export interface RawRule {
  readonly permission?: unknown;
  readonly action?: unknown;
  readonly topic?: unknown;
  readonly qos?: unknown;
  readonly retain?: unknown;
}

export class RawRuleError extends Error {}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return undefined;
}

function rawQos(v: unknown): number[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const list = Array.isArray(v) ? v.map(text) : (text(v) ?? '').split(',');
  const out: number[] = [];
  for (const q of list) {
    const n = Number((q ?? '').trim());
    if (q === undefined || !Number.isInteger(n) || n < 0 || n > 2) throw new RawRuleError(`bad qos ${JSON.stringify(v)}: expected 0, 1, 2 or a list of them`);
    out.push(n);
  }
  return out;
}

function rawRetain(v: unknown): boolean | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const t = text(v)?.toLowerCase();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  if (t === 'all') return undefined;
  throw new RawRuleError(`bad retain ${JSON.stringify(v)}: expected true, false or all`);
}

/**
 * One rule from a backend's record, for the client the record was fetched for (so `who` is
 * all). Missing permission means allow (Redis rules only allow). A topic `eq t/#` is the
 * literal filter, as EMQX reads it; `${username}`/`${clientid}` are filled per client.
 */
export function ruleFromRaw(raw: RawRule, source: string): AclRule {
  const permission = text(raw.permission)?.toLowerCase() ?? 'allow';
  if (permission !== 'allow' && permission !== 'deny') throw new RawRuleError(`bad permission ${JSON.stringify(raw.permission)}: expected allow or deny`);
  let action = text(raw.action)?.toLowerCase();
  if (action === 'pubsub') action = 'all';
  if (action !== 'publish' && action !== 'subscribe' && action !== 'all') throw new RawRuleError(`bad action ${JSON.stringify(raw.action)}: expected publish, subscribe or all`);
  const topic = text(raw.topic);
  if (topic === undefined || topic === '') throw new RawRuleError('missing topic');
  const eq = topic.startsWith('eq ');
  const t = eq ? topic.slice(3) : topic;
  const rule: AclRule = {
    permission,
    who: { kind: 'all' },
    action,
    topics: [{ eq, all: false, text: t, hasPlaceholder: PLACEHOLDER.test(t) }],
    source,
  };
  const qos = rawQos(raw.qos);
  const retain = rawRetain(raw.retain);
  return qos === undefined && retain === undefined ? rule : { ...rule, qos, retain };
}

/**
 * A client's own rules as EMQX carries them in a JWT `acl` claim or an HTTP authentication
 * response's `acl` field: a list of {permission, action, topic, qos, retain} or the older
 * {pub, sub, all} allow lists. Throws RawRuleError on a malformed entry.
 */
export function aclFieldRules(claim: unknown, source: string): AclRule[] {
  const raws: RawRule[] = [];
  if (Array.isArray(claim)) {
    for (const r of claim) {
      if (typeof r !== 'object' || r === null) throw new RawRuleError('an acl entry is not an object');
      raws.push(r as RawRule);
    }
  } else if (typeof claim === 'object' && claim !== null) {
    const actions: Record<string, string> = { pub: 'publish', sub: 'subscribe', all: 'all' };
    for (const [k, topics] of Object.entries(claim)) {
      const action = actions[k];
      if (action === undefined) throw new RawRuleError(`unknown acl key ${JSON.stringify(k)}: expected pub, sub or all`);
      if (!Array.isArray(topics)) throw new RawRuleError(`acl.${k} is not a list of topics`);
      for (const topic of topics) raws.push({ permission: 'allow', action, topic });
    }
  } else {
    throw new RawRuleError('the acl claim is neither a list of rules nor a {pub, sub, all} object');
  }
  return raws.map((r) => ruleFromRaw(r, source));
}
