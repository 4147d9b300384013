/**
 * The import rules of design.md ("Rooms (folders) and who may enter"), checked in CI.
 * A room may import from its own layer or below; edge rooms only through the public facades.
 */
const layers = {
  codec: 1,
  topic: 1,
  config: 2,
  observability: 2,
  hooks: 2,
  store: 3,
  auth: 3,
  router: 4,
  broker: 4,
  session: 5,
  channel: 6,
  connection: 7,
  transport: 7,
};
const edgeRooms = ['api', 'cli', 'rules', 'integrations', 'cluster', 'gateway'];
// What the edge may reach: pure utilities, the control-plane rooms, and the broker's facade.
const edgeAllowed = ['codec', 'topic', 'config', 'observability', 'hooks', 'store', 'auth'];

// Exceptions inside layer 1: the codec is pure and imports nothing of ours; the topic room
// builds on the codec's wire-level topic syntax.
const allowedFor = {
  codec: ['codec'],
  topic: ['codec', 'topic'],
};

function roomsAtOrBelow(layer) {
  return Object.keys(layers).filter((r) => layers[r] <= layer);
}

const forbidden = [
  {
    name: 'no-circular',
    severity: 'error',
    comment:
      'Import cycles make the layering meaningless. A cycle closed only by type imports (a handler ' +
      'naming the Channel type it is given) has no run-time edge and is allowed.',
    from: {},
    to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
  },
];

for (const room of Object.keys(layers)) {
  const allowed = allowedFor[room] ?? roomsAtOrBelow(layers[room]);
  forbidden.push({
    name: `layer-${room}`,
    severity: 'error',
    comment: `src/${room} may import only: ${allowed.join(', ')} (design.md)`,
    from: { path: `^src/${room}/` },
    to: { path: '^src/', pathNot: `^src/(${allowed.join('|')})/` },
  });
}

for (const room of edgeRooms) {
  forbidden.push({
    name: `edge-${room}`,
    severity: 'error',
    comment: `src/${room} is an edge room: it may import ${edgeAllowed.join(', ')} and src/broker/index.ts only`,
    from: { path: `^src/${room}/` },
    to: {
      path: '^src/',
      pathNot: `^src/((${[...edgeAllowed, room].join('|')})/|broker/index\\.ts$)`,
    },
  });
}

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
