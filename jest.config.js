// Jest runs TypeScript through swc as native ESM (NODE_OPTIONS=--experimental-vm-modules, set by `npm test`).
// node_modules stay untransformed: NestJS 12 and MikroORM 7 ship ESM that uses import.meta.
const swcConfig = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2023',
    keepClassNames: true,
  },
  module: { type: 'es6' },
};

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', swcConfig] },
  moduleNameMapper: {
    '^@sagaflow/shared$': '<rootDir>/shared/src/index.ts',
    '^@sagaflow/shared/launcher$': '<rootDir>/shared/src/launcher/index.ts',
    '^@sagaflow/shared/testkit$': '<rootDir>/shared/src/testkit/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  roots: ['<rootDir>/shared', '<rootDir>/orchestrator', '<rootDir>/services', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  globalSetup: '<rootDir>/test/global-setup.mjs',
  globalTeardown: '<rootDir>/test/global-teardown.mjs',
  testTimeout: 60000,
};
