// The operator's actions on an incident, each in a modal dialog: assign (asks the server for
// `candidates` with their road ETAs, the operator picks one, then `assign`), cancel (a reason
// is required) and resolve (an optional note). A refusal shows the server's own message in
// the dialog; nothing is swallowed.

import { esc } from './queue.js';

export function createActions(dialog, ctx) {
  const { t, i18n } = ctx;

  function close() {
    if (dialog.open) dialog.close();
  }

  function frame(title, body) {
    dialog.innerHTML = `<form method="dialog" class="dialog-form">
      <h2>${esc(title)}</h2>
      ${body}
      <p class="error" role="alert" aria-live="assertive"></p>
      <div class="dialog-buttons">
        <button type="button" class="close">${esc(t('dialog.close'))}</button>
        <button type="submit" class="primary" value="ok"></button>
      </div>
    </form>`;
    dialog.querySelector('.close').addEventListener('click', close);
    if (!dialog.open) dialog.showModal();
    return dialog.querySelector('form');
  }

  function showError(e) {
    const p = dialog.querySelector('.error');
    if (p) p.textContent = t('error.refused', { message: e.message || e.code });
  }

  async function run(form, msg, done) {
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    form.querySelector('.error').textContent = '';
    try {
      if (!ctx.conn) throw Object.assign(new Error(t('conn.closed')), { code: 'disconnected' });
      await ctx.conn.request(msg);
      close();
      ctx.toast(done, 'ok');
    } catch (e) {
      showError(e);
    } finally {
      submit.disabled = false;
    }
  }

  /** `answers`: who already declined this incident or let its offer expire (their badge). */
  async function assign(inc, answers) {
    const form = frame(t('assign.title', { id: inc.id, elder: inc.elder_id }), `<p class="hint">${esc(t('assign.loading'))}</p><fieldset class="candidates" hidden><legend>${esc(t('assign.pick'))}</legend></fieldset>`);
    const submit = form.querySelector('button[type=submit]');
    submit.textContent = t('action.assign');
    submit.disabled = true;
    const hint = form.querySelector('.hint');
    const set = form.querySelector('.candidates');
    let reply;
    try {
      if (!ctx.conn) throw Object.assign(new Error(t('conn.closed')), { code: 'disconnected' });
      reply = await ctx.conn.request({ type: 'candidates', incident_id: inc.id, limit: 10 });
    } catch (e) {
      hint.textContent = '';
      showError(e);
      return;
    }
    const list = reply.candidates || [];
    if (!list.length) {
      hint.textContent = t('assign.none');
      return;
    }
    hint.remove();
    set.hidden = false;
    set.insertAdjacentHTML(
      'beforeend',
      list
        .map(
          (c, i) => `<label class="candidate"><input type="radio" name="responder" value="${esc(c.responder_id)}" ${i === 0 ? 'checked' : ''}>
          <b>${esc(c.responder_id)}</b> <span>${esc(t(`rkind.${c.kind}`))} · ${esc(t(`mode.${c.travel_mode}`))}</span>
          <span class="eta">${esc(t('assign.eta', { eta: i18n.duration(c.eta_s), distance: i18n.distance(c.distance_m) }))}</span>
          ${c.familiar ? `<span class="badge">${esc(t('assign.familiar'))}</span>` : ''}
          ${answers.has(c.responder_id) ? `<span class="badge said" data-said="${esc(answers.get(c.responder_id))}">${esc(t(`outcome.${answers.get(c.responder_id)}`))}</span>` : ''}</label>`,
        )
        .join(''),
    );
    submit.disabled = false;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const picked = form.querySelector('input[name=responder]:checked');
      if (!picked) return;
      run(form, { type: 'assign', incident_id: inc.id, responder_id: picked.value }, t('assign.done', { responder: picked.value, id: inc.id }));
    });
  }

  function cancel(inc) {
    const form = frame(
      t('cancel.title', { id: inc.id, elder: inc.elder_id }),
      `<label for="cancel-reason">${esc(t('cancel.reason'))}</label><textarea id="cancel-reason" name="reason" rows="3" required></textarea>`,
    );
    const submit = form.querySelector('button[type=submit]');
    submit.textContent = t('action.cancel');
    submit.classList.replace('primary', 'danger');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const reason = form.querySelector('textarea').value.trim();
      if (!reason) {
        form.querySelector('.error').textContent = t('cancel.reasonNeeded');
        return;
      }
      run(form, { type: 'cancel', incident_id: inc.id, reason }, t('cancel.done', { id: inc.id }));
    });
    form.querySelector('textarea').focus();
  }

  function resolve(inc) {
    const form = frame(
      t('resolve.title', { id: inc.id, elder: inc.elder_id }),
      `<label for="resolve-note">${esc(t('resolve.note'))}</label><textarea id="resolve-note" name="note" rows="3"></textarea>`,
    );
    const submit = form.querySelector('button[type=submit]');
    submit.textContent = t('action.resolve');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const note = form.querySelector('textarea').value.trim();
      run(form, { type: 'resolve', incident_id: inc.id, note }, t('resolve.done', { id: inc.id }));
    });
    form.querySelector('textarea').focus();
  }

  return {
    open(action, inc, answers = new Map()) {
      if (!inc) return;
      if (action === 'assign') assign(inc, answers);
      else if (action === 'cancel') cancel(inc);
      else if (action === 'resolve') resolve(inc);
    },
    close,
  };
}
