import { useEffect, useState } from 'preact/hooks';
import { api, type DeadLetterPage, type Session, whenSignedOut } from './api';
import { DeadLettersPage } from './dead-letters';
import { connectLive, type LiveState, useLiveEvents } from './live';
import { Logo } from './logo';
import { SagaPage } from './saga';
import { SagasPage } from './sagas';
import { SignIn } from './sign-in';
import { Notices, ReasonDialog } from './widgets';

/** The page's place: `#/sagas?…`, `#/sagas/<orderId>`, `#/dead-letters`. */
function useRoute(): { path: string[]; params: URLSearchParams } {
  const read = () => {
    const [path, search = ''] = location.hash.replace(/^#\/?/, '').split('?');
    return { path: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = () => setRoute(read());
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}

export function App() {
  // undefined: still asking the server whether the browser holds a session.
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  useEffect(() => {
    whenSignedOut(() => setSession(null));
    api<Session>('/ui/session').then(setSession, () => setSession(null));
  }, []);
  if (session === undefined) return <div class="splash" />;
  return (
    <>
      {session ? <Shell session={session} onSignedOut={() => setSession(null)} /> : <SignIn onSignedIn={setSession} />}
      <ReasonDialog />
      <Notices />
    </>
  );
}

function Shell({ session, onSignedOut }: { session: Session; onSignedOut: () => void }) {
  const route = useRoute();
  const [live, setLive] = useState<LiveState>('connecting');
  const [waiting, setWaiting] = useState<number | null>(null);
  useEffect(
    () =>
      connectLive(setLive, () => {
        // Refused: if the session is over, back to the sign-in form; else the stream is tried again shortly.
        api('/ui/session').catch(() => onSignedOut());
      }),
    [],
  );
  const countLetters = (depths: Record<string, number>) => setWaiting(Object.entries(depths).reduce((sum, [queue, depth]) => sum + (queue.endsWith('.dlq') ? depth : 0), 0));
  useEffect(() => void api<DeadLetterPage>('/console/dead-letters?limit=1').then((page) => countLetters(page.depths), () => undefined), []);
  useLiveEvents((event) => event.type === 'dead-letters' && countLetters(event.data.depths));

  const signOut = async () => {
    await api('/ui/session', { method: 'DELETE' }).catch(() => undefined);
    onSignedOut();
  };
  const [section, id] = route.path;
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="#/sagas">
          <Logo />
          <span>Sagaflow</span>
        </a>
        <nav class="nav">
          <a href="#/sagas" class={section !== 'dead-letters' ? 'active' : ''}>
            Sagas
          </a>
          <a href="#/dead-letters" class={section === 'dead-letters' ? 'active' : ''}>
            Dead letters
            {waiting !== null && waiting > 0 && (
              <span class="count" data-testid="dead-letter-count">
                {waiting}
              </span>
            )}
          </a>
        </nav>
        <div class="topbar-end">
          <span class={`live ${live}`} title={live === 'live' ? 'Changes arrive as they happen' : 'Reconnecting to the live updates'}>
            <span class="live-dot" />
            {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Offline'}
          </span>
          <span class="actor" title={`Signed in as ${session.actor}${session.expiresAt ? ` until ${new Date(session.expiresAt).toLocaleString()}` : ''}`}>
            {session.actor}
          </span>
          <button class="button ghost" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main>
        {section === 'dead-letters' ? <DeadLettersPage /> : section === 'sagas' && id ? <SagaPage orderId={id} session={session} /> : <SagasPage params={route.params} />}
      </main>
    </div>
  );
}
