// A confirm that never comes fails its publish as an outage instead of holding a saga until its deadline.
import { ConfirmWatch } from './confirm-watch.js';
import { isConnectionFailure } from './errors.js';

test('publishes waiting with nothing confirmed for the timeout fail as an outage, once', () => {
  const watch = new ConfirmWatch(30_000);
  const outcomes: (Error | null)[] = [];
  const first = watch.track((error) => outcomes.push(error));
  watch.track((error) => outcomes.push(error));
  expect(watch.check(0)).toBe(false);
  expect(watch.check(29_999)).toBe(false);
  expect(watch.check(30_000)).toBe(true);
  expect(outcomes).toHaveLength(2);
  expect(isConnectionFailure(outcomes[0])).toBe(true);
  first(null); // a confirm arriving after all is not a second outcome
  expect(outcomes).toHaveLength(2);
  expect(watch.check(90_000)).toBe(false); // nothing waits any more
});

test('a channel that keeps confirming is not wedged, however long one publish waits behind others', () => {
  const watch = new ConfirmWatch(30_000);
  const outcomes: (Error | null)[] = [];
  watch.track((error) => outcomes.push(error));
  watch.check(0);
  for (let at = 10_000; at <= 60_000; at += 10_000) {
    watch.track((error) => outcomes.push(error))(null);
    expect(watch.check(at)).toBe(false);
  }
  expect(outcomes).toEqual([null, null, null, null, null, null]);
});
