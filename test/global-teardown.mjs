export default async function globalTeardown() {
  const { environment, system } = globalThis.__sagaflow;
  await system.stop();
  await environment.dispose();
}
