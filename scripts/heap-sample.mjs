// Loaded into each process by `npm run bench -- --heap-sample DIR` (node --import): samples what the process
// allocates, collected objects included, between two SIGUSR2s (the bench's measuring window), and writes
// DIR/<pid>.heapprofile. `node scripts/profile-summary.mjs <file> --sagas N` gives bytes per saga.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.SAGAFLOW_HEAP_SAMPLE_DIR;
const session = new Session();
session.connect();
let sampling = false;

process.on('SIGUSR2', () => {
  if (!sampling) {
    sampling = true;
    session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  sampling = false;
  session.post('HeapProfiler.stopSampling', (error, result) => {
    if (!error) writeFileSync(join(dir, `${process.pid}.heapprofile`), JSON.stringify(result.profile));
  });
});
