import { useState } from 'preact/hooks';
import { api, type Session } from './api';
import { Logo } from './logo';

/** The token goes to the server once; it answers with an HttpOnly session cookie the page never sees. */
export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api<Session>('/ui/session', { method: 'POST', body: { token: token.trim() } }));
    } catch (failure) {
      setError((failure as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <form class="sign-in-card" onSubmit={submit}>
        <div class="sign-in-brand">
          <Logo />
          <span>Sagaflow</span>
        </div>
        <h1>Sign in to the saga dashboard</h1>
        <p class="muted">
          For operators: an operator API key (<code>npm start</code> prints one) or a JWT with the operator role.
        </p>
        <label class="field">
          <span>API key or token</span>
          <input name="token" type="password" autocomplete="off" spellcheck={false} required value={token} onInput={(event) => setToken(event.currentTarget.value)} autofocus />
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <button class="button primary wide" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
