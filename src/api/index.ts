/** The REST API room's facade: what app.ts wires. */
export { ApiServer, type ApiServerDeps, type ApiListenerStats, type InjectedRequest } from './server.js';
export { CtlSocketServer, CtlSocketError, ctlSocketPath, CTL_MAX_LINE, type CtlRequest, type CtlAnswer } from './ctl-socket.js';
export { ApiKeys, DashboardUsers, LoginLimiter, ADMIN_USER, ADMIN_PASSWORD_FILE, type Role, type Principal } from './auth.js';
