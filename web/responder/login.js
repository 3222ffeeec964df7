// The sign-in screen: one field for the access code on the volunteer's card, and a clear
// sentence when the code is refused.

export function bindLogin(root, { onLogin }) {
  const form = root.querySelector('#login-form');
  const input = root.querySelector('#token');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    onLogin(input.value.trim());
  });
}

export function renderLogin(root, state, loc, { emptyTried = false } = {}) {
  const error = root.querySelector('#login-error');
  const input = root.querySelector('#token');
  let msg = '';
  if (state.connection === 'wrong_token') msg = loc.t('login.wrong_token');
  else if (emptyTried) msg = loc.t('login.empty');
  error.textContent = msg;
  input.setAttribute('aria-invalid', msg ? 'true' : 'false');
}
