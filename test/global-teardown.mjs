export default async function globalTeardown() {
  await globalThis.__sagaflow.dispose();
}
