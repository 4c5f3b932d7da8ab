export * from '../launcher/index.js';
export * from './api-client.js';
export * from './broker-admin.js';
export * from './eventually.js';
export * from './isolated-environment.js';
export * from './tcp-proxy.js';
export * from './database-admin.js';
export * from './invariants.js';
