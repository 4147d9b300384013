export { Connection, HIGH_WATERMARK, type ConnectionContext, type ConnectionInfo } from './connection.js';
export { addCommitter, removeCommitter, requestTurn, type Committer } from './flush.js';
