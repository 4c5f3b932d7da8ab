/** Three steps and the way back: the mark in the header and on the sign-in page. */
export const Logo = () => (
  <svg class="logo" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
    <circle cx="5" cy="7" r="2.5" />
    <circle cx="12" cy="7" r="2.5" />
    <circle cx="19" cy="7" r="2.5" />
    <path d="M7.5 7h2M14.5 7h2M19 10v4a3 3 0 0 1-3 3H8a3 3 0 0 1-3-3v-1" fill="none" stroke-width="1.8" stroke-linecap="round" />
  </svg>
);
