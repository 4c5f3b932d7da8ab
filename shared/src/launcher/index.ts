export * from './database.js';
export * from './processes.js';
export * from './system.js';
export * from './rabbit-cluster.js';
