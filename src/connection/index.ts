export { Connection, HIGH_WATERMARK, type ConnectionInfo } from './connection.js';
