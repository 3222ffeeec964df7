// The time bank card: the volunteer's banked hours and the jobs that earned them, read over
// HTTP with the volunteer's own code (GET /v1/responders/{id}/time-bank).

const SHOWN_JOBS = 5;

/** Fetches the bank and returns a store event (`time_bank` or `time_bank_error`). */
export async function loadTimeBank({ base = location.origin, token, responderId }) {
  try {
    const r = await fetch(`${base}/v1/responders/${encodeURIComponent(responderId)}/time-bank`, {
      headers: { Authorization: `Bearer ${token}` },
      cache: 'no-store',
    });
    if (r.status === 404) {
      // Servers before the "200 with zero" change answered 404 for a volunteer with no credit.
      return { type: 'time_bank', balance_minutes: 0, history: [] };
    }
    if (!r.ok) return { type: 'time_bank_error' };
    const body = await r.json();
    return {
      type: 'time_bank',
      balance_minutes: Number(body.balance_minutes) || 0,
      history: Array.isArray(body.history) ? body.history : [],
    };
  } catch {
    return { type: 'time_bank_error' };
  }
}

export function renderTimeBank(root, state, loc) {
  const balance = root.querySelector('#bank-balance');
  const list = root.querySelector('#bank-history');
  const bank = state.timeBank;
  if (!bank) {
    balance.textContent = state.timeBankError ? loc.t('bank.unavailable') : '…';
    list.replaceChildren();
    return;
  }
  balance.textContent = loc.hoursMinutes(bank.balance_minutes);
  const recent = [...bank.history]
    .sort((a, b) => (b.completed_at ?? 0) - (a.completed_at ?? 0))
    .slice(0, SHOWN_JOBS);
  if (!recent.length) {
    const li = document.createElement('li');
    li.textContent = loc.t('bank.none');
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(
    ...recent.map((h) => {
      const li = document.createElement('li');
      const what = document.createElement('span');
      what.textContent = `${loc.t('bank.job', { id: h.incident_id })} · ${h.completed_at ? loc.dateTime(h.completed_at) : ''}`;
      const mins = document.createElement('span');
      mins.className = 'mins';
      mins.textContent = `+${loc.minutes(h.minutes)}`;
      li.append(what, mins);
      return li;
    }),
  );
}
