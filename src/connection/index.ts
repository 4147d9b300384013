export { Connection, HIGH_WATERMARK, type ConnectionInfo } from './connection.js';
export { addCommitter, removeCommitter, requestTurn, type Committer } from './flush.js';
