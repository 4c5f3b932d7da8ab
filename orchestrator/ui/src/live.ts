// Server-sent events from /ui/events, shared by every view: one EventSource per page.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export type LiveEvent =
  | { type: 'sagas'; data: { sagas: { sagaId: string; orderId: string; status: string; updatedAt: string }[]; more: boolean } }
  | { type: 'dead-letters'; data: { depths: Record<string, number> } }
  /** The stream was down for a while: whatever is shown may have missed changes. */
  | { type: 'resync' };

export type LiveState = 'connecting' | 'live' | 'offline';

const listeners = new Set<(event: LiveEvent) => void>();
const emit = (event: LiveEvent) => listeners.forEach((listener) => listener(event));

/**
 * Keeps the page's event stream open. The browser reconnects by itself after a dropped connection; a refused
 * one (the session ended, the server answered 503) closes it, and `onClosed` decides what next.
 */
export function connectLive(onState: (state: LiveState) => void, onClosed: () => void): () => void {
  let source: EventSource;
  let retry: number | undefined;
  let interrupted = false;
  const open = () => {
    source = new EventSource('/ui/events');
    onState('connecting');
    source.onopen = () => {
      onState('live');
      if (interrupted) emit({ type: 'resync' });
      interrupted = false;
    };
    source.onerror = () => {
      interrupted = true;
      if (source.readyState !== EventSource.CLOSED) return onState('connecting');
      onState('offline');
      onClosed();
      retry = window.setTimeout(open, 5_000);
    };
    for (const type of ['sagas', 'dead-letters'] as const) {
      source.addEventListener(type, (message) => emit({ type, data: JSON.parse((message as MessageEvent<string>).data) } as LiveEvent));
    }
  };
  open();
  return () => {
    window.clearTimeout(retry);
    source.close();
  };
}

export function useLiveEvents(handler: (event: LiveEvent) => void): void {
  const current = useRef(handler);
  current.current = handler;
  useEffect(() => {
    const listener = (event: LiveEvent) => current.current(event);
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, []);
}

export interface Resource<T> {
  data?: T;
  error?: string;
  /** Nothing has come back yet for this key. */
  loading: boolean;
  /** Loads again; calls while a load is under way make one more load after it, not one each. */
  refresh: () => void;
}

/** Data loaded from the API when `key` changes, and again on `refresh()` (live events call it). */
export function useResource<T>(load: () => Promise<T>, key: string): Resource<T> {
  // Whatever is held belongs to the key it was loaded for: another key's data is never shown as this one's.
  const [state, setState] = useState<{ key?: string; data?: T; error?: string }>({});
  const loader = useRef(load);
  loader.current = load;
  const currentKey = useRef(key);
  currentKey.current = key;
  const running = useRef<Promise<void> | null>(null);
  const again = useRef(false);

  const refresh = useCallback(() => {
    if (running.current) {
      again.current = true;
      return;
    }
    const forKey = currentKey.current;
    const settle = (next: { data?: T; error?: string }) => {
      if (forKey === currentKey.current) setState((previous) => ({ key: forKey, data: previous.key === forKey ? previous.data : undefined, ...next }));
    };
    const run = loader.current().then(
      (data) => settle({ data, error: undefined }),
      (error: Error) => settle({ error: error.message }),
    );
    running.current = run;
    void run.finally(() => {
      if (running.current === run) running.current = null;
      if (again.current) {
        again.current = false;
        refresh();
      }
    });
  }, []);

  useEffect(() => {
    running.current = null;
    again.current = false;
    refresh();
  }, [key]);

  const mine = state.key === key;
  return { data: mine ? state.data : undefined, error: mine ? state.error : undefined, loading: !mine, refresh };
}
