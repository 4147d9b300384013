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
| rate | \`"1000/s"\`, \`"10MB/2s"\`, \`"infinity"\` | \`{ amount, periodMs }\`, or null for no limit |
| infinity | \`"infinity"\` where the type says so (TOML \`inf\` also works) | \`Infinity\` |
| disabled | \`"disabled"\` where the type says so | \`null\` |

The **reloadable** column says whether a key may change while the broker runs (taking effect for new
connections and sessions); the others need a restart.
`;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The default as it would be written in the TOML file. */
function defaultText(spec: KeySpec): string {
  const written = typeof spec.default === 'string' ? JSON.stringify(spec.default) : String(spec.default);
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
