// Writes rabbitmq/definitions.json from the topology in shared/ (the one source of truth), so the compose
// broker boots with every exchange, queue and binding, and with the user the processes log in as.
// Reads the built output: run `npm run topology:export` (builds first). `--print` prints instead of writing.
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildTopology, toDefinitions } from '../shared/dist/index.js';

export const VHOST = '/';
export const USER = 'sagaflow';
export const PASSWORD = 'sagaflow';
// Fixed so that re-exporting gives the same file (RabbitMQ would pick a random one).
export const SALT = Buffer.from('5a9af10e', 'hex');

const target = fileURLToPath(new URL('../rabbitmq/definitions.json', import.meta.url));

export function renderDefinitions() {
  const definitions = toDefinitions(buildTopology('quorum'), VHOST, { name: USER, password: PASSWORD, salt: SALT });
  return `${JSON.stringify(definitions, null, 2)}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--print')) {
    process.stdout.write(renderDefinitions());
  } else {
    writeFileSync(target, renderDefinitions());
    console.log(`wrote ${target}`);
  }
}
