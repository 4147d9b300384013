export { TcpListener, ListenerError, type AcceptedSocket } from './tcp.js';
