/**
 * Renders docs/config.md from the schema, so the reference page cannot fall behind the code.
 * scripts/gen-config-docs.ts writes it; test/config/docs.test.ts fails when the file on disk
 * differs from this output.
 */
import { typeText } from './coerce.js';
import { type KeySpec, keySpecs } from './schema.js';

/** A line under each section heading; a section without one just gets its table. */
const SECTION_INTROS: Readonly<Record<string, string>> = {
  node: 'Identity of this broker process and where it keeps its data.',
  log: 'Log output. Lines carry a stable `event` name (see the observability docs).',
  listeners:
    'Listeners by type (`tcp`, `ssl`, `ws`, `wss`) and name. `listeners.<type>.default` always exists, on EMQX\'s ' +
    'ports 1883, 8883, 8083 and 8084 (set its `enable = false` to go without it); add more with ' +
    '`listeners.<type>.<name>.bind`. TLS certificate files are re-read without a restart on SIGHUP.',
  mqtt: 'MQTT protocol limits and session behaviour; names and defaults follow EMQX 5.8 `mqtt.*`.',
  force_shutdown:
    'Closing a connection that holds too much, as EMQX\'s `force_shutdown` does; see "Flow control" above. ' +
    'EMQX\'s `max_mailbox_size` counts an Erlang process mailbox, which Petrel has no equivalent of; here it ' +
    'counts the connected client\'s mqueue, which `mqtt.max_mqueue_len` already bounds (oldest dropped first), so ' +
    'it defaults to infinity and only acts when set below `mqtt.max_mqueue_len`: the slow client is closed instead of ' +
    'losing messages (a persistent session keeps them). `max_heap_size` counts unsent bytes; a connection stops taking ' +
    'messages at 1MB of them and queues the rest, so it acts on clients that do not read their acknowledgements.',
  overload_protection:
    'Refusing new connections while the process is overloaded; see "Flow control" above.',
  retainer: 'Retained messages.',
  delayed: 'Delayed publish: a PUBLISH to `$delayed/<seconds>/<topic>` is sent to `<topic>` that many seconds later.',
};

const INTRO = `# Configuration reference

<!-- Generated from src/config/schema.ts by \`node dist/scripts/gen-config-docs.js\`. Do not edit by hand. -->

Petrel reads one TOML file (\`petrel start --config petrel.toml\`), then overrides from the environment
and from \`--set\` on the command line. Key names and defaults follow EMQX where EMQX has the key.

## Where config comes from

**File.** TOML, with dotted keys or tables, as you like:

\`\`\`toml
mqtt.max_inflight = 64
mqtt.idle_timeout = "30s"

[listeners.tcp.default]
bind = "0.0.0.0:1883"

[listeners.tcp.internal]
bind = "127.0.0.1:11883"
\`\`\`

**Environment.** \`PETREL_\` followed by the key in upper case, with \`__\` (two underscores) for each dot:
\`PETREL_LISTENERS__TCP__DEFAULT__BIND=127.0.0.1:1883\` sets \`listeners.tcp.default.bind\`. Only variables
whose name contains \`__\` are read as config, so \`PETREL_HOME\` and the like are left alone; a
\`PETREL_...__...\` variable that names no key is an error. The value is read as a TOML value when it is one
(\`64\`, \`true\`, \`"text"\`, \`[1, 2]\`), otherwise as a plain string (\`30s\`, \`127.0.0.1:1883\`).

**Command line.** \`petrel start --set mqtt.max_inflight=64 --set node.name=n1@10.0.0.5\`; the value is read
the same way as an environment value (\`--set node.name="n1@h"\` and \`--set node.name=n1@h\` are the same).

**Precedence**, highest first: \`--set\`, environment, file, defaults. A program embedding Petrel may also pass
\`values\` (an object shaped like the TOML file); they rank with the file and are applied after it.

Every key and value is checked at start-up, including values a higher layer overrides. An unknown key or a bad
value stops start-up with a message naming the key, the value, where it came from and what is accepted, e.g.
\`config key mqtt.max_inflight: value 0 (from --set) is out of range; accepted: integer 1..65535\`.

## Value syntax

| type | written as | resolves to |
| --- | --- | --- |
| duration | \`500ms\`, \`15s\`, \`1m\`, \`2h\`, \`1d\`, \`1h30m\`; a bare integer is **milliseconds** (as in EMQX) | milliseconds |
| size | \`1024\`, \`64KB\`, \`1MB\`, \`1GB\` (KB = 1024 bytes) | bytes |
| bind | \`"0.0.0.0:1883"\`, \`"[::1]:1883"\`, \`"1883"\` or \`1883\` (host defaults to 0.0.0.0) | \`{ host, port }\` |
| rate | \`"1000/s"\`, \`"10MB/2s"\`, \`"500/100ms"\`, \`"10"\` (per second), \`"infinity"\` | \`{ amount, periodMs }\`, or null for no limit |
| rate,burst | \`"1024,4096"\` (bytes/s, bucket), \`"100KB,10s"\` (size per period), \`"infinity"\` | \`{ amount, periodMs, burst }\`, or null |
| infinity | \`"infinity"\` where the type says so (TOML \`inf\` also works) | \`Infinity\` |
| disabled | \`"disabled"\` where the type says so | \`null\` |
| table of strings | \`headers = { "x-api-key" = "k" }\`, or a \`[authentication.web.headers]\` section of \`name = "value"\` lines; JSON object text \`'{"x-api-key": "k"}'\` is read too (the form for env and \`--set\`); numbers and booleans become strings | \`{ name: "value" }\` |

The **reloadable** column says whether a key may change while the broker runs (taking effect for new
connections and sessions); the others need a restart.

## Flow control

A client that sends faster than its listener allows is **slowed, never dropped**: its socket is not read
until the token bucket has tokens again, so nothing it sent is lost and nothing piles up in the broker
(at most one socket read is held per paused connection: up to 64 KB over TCP, one message over WebSocket; the rest
waits in the client and the kernel).

- **Per client**: \`listeners.<type>.<name>.messages_rate\` (PUBLISH packets) and \`bytes_rate\` (every byte
  read), each with a \`*_burst\` on top of one period's worth, as EMQX's listener limiter. The older
  \`rate_limit = "1024,4096"\` (bytes/s, bucket) is read when \`bytes_rate\` is infinity.
- **Per listener**: \`total_messages_rate\` / \`total_bytes_rate\` (with \`total_*_burst\`) is one bucket
  shared by all clients of the listener.
- \`max_conn_rate\` paces new connections the same way (sockets wait unread).
- Rates change at run time: \`petrel.setLimits({ "listeners.tcp.default.messages_rate": "500/s" })\` (any
  flow-control key; checked like the file) applies to connected clients at once.
- A paused client is resumed from the broker's timer wheel (250 ms ticks), so a bucket always holds at least
  a quarter-second's worth of its rate.
- \`force_shutdown\` closes a connection whose mqueue or unsent bytes grow past its limits (reason
  \`mqueue_overflow_shutdown\`, MQTT 5 DISCONNECT 0x97, counted in the listener's shutdown counts).
- \`overload_protection\` raises the \`overload\` alarm (\`alarm_activated\` / \`alarm_deactivated\` log lines)
  when resident memory or event-loop delay passes its threshold; while raised, new connections get
  CONNACK 0x89 Server Busy (MQTT 5) or 0x03 Server Unavailable (3.1.1) and connected clients carry on.
`;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The default as it would be written in the TOML file. */
function defaultText(spec: KeySpec): string {
  const written = typeof spec.default === 'string' ? JSON.stringify(spec.default) : spec.type === 'map' ? '{}' : String(spec.default);
  return spec.requiredForNamed ? `\`${written}\` for default; required for others` : `\`${written}\``;
}

function table(specs: readonly KeySpec[]): string {
  const rows = specs.map((s) =>
    `| \`${s.key}\` | ${cell(typeText(s))} | ${cell(defaultText(s))} | ${s.reloadable ? 'yes' : 'no'} | ${cell(s.doc)} |`,
  );
  return ['| key | type | default | reloadable | doc |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}

/** The whole of docs/config.md. */
export function renderConfigDocs(): string {
  const sections = new Map<string, KeySpec[]>();
  for (const spec of keySpecs()) {
    const top = spec.key.slice(0, spec.key.indexOf('.'));
    const list = sections.get(top) ?? [];
    list.push(spec);
    sections.set(top, list);
  }
  const parts = [INTRO];
  for (const [name, specs] of sections) {
    const intro = SECTION_INTROS[name];
    parts.push(`## ${name}\n\n${intro ? `${intro}\n\n` : ''}${table(specs)}\n`);
  }
  return parts.join('\n');
}
