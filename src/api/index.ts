/** The REST API room's facade: what app.ts wires. */
export { ApiServer, type ApiServerDeps, type ApiListenerStats } from './server.js';
export { ApiKeys, DashboardUsers, LoginLimiter, ADMIN_USER, ADMIN_PASSWORD_FILE, type Role, type Principal } from './auth.js';
