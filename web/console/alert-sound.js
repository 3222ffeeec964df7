// The sound of a new emergency: two short WebAudio beeps (no audio file), at most one alert
// every 2 s however many arrive, with a mute toggle remembered in localStorage. Browsers only
// allow sound after a user gesture, so the audio context is created on the first click or key.

const MUTE_KEY = 'console.muted';

export function createAlertSound(button, ctx) {
  const { t } = ctx;
  let muted = false;
  try {
    muted = localStorage.getItem(MUTE_KEY) === '1';
  } catch {
    /* no storage: not remembered */
  }
  let audio = null;
  let tried = false;
  let lastAt = 0;
  const unlock = () => {
    if (audio || tried) return;
    tried = true;
    try {
      audio = new AudioContext();
    } catch {
      audio = null;
    }
  };
  const gesture = () => {
    tried = false; // a gesture may allow what a start without one did not
    unlock();
  };
  window.addEventListener('pointerdown', gesture, { once: true, capture: true });
  window.addEventListener('keydown', gesture, { once: true, capture: true });

  function beep() {
    if (!audio) unlock();
    if (!audio) return;
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    const now = audio.currentTime;
    for (const [start, freq] of [[0, 880], [0.22, 1175]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + start);
      gain.gain.exponentialRampToValueAtTime(0.3, now + start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + start + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + start);
      osc.stop(now + start + 0.2);
    }
  }

  const api = {
    played: 0,
    renderButton() {
      button.setAttribute('aria-pressed', String(muted));
      button.textContent = muted ? t('sound.muted') : t('sound.on');
      button.title = muted ? t('sound.unmute') : t('sound.mute');
    },
    newEmergencies() {
      const now = Date.now();
      if (muted || now - lastAt < 2000) return;
      lastAt = now;
      api.played++;
      beep();
    },
  };
  button.addEventListener('click', () => {
    muted = !muted;
    try {
      localStorage.setItem(MUTE_KEY, muted ? '1' : '0');
    } catch {
      /* not remembered */
    }
    api.renderButton();
  });
  return api;
}
