// Gets a volunteer's attention for a new offer: the phone vibrates and plays a short chime
// when the browser allows it (sound needs one earlier tap: `unlock` is called on every tap
// that signs in or switches duty).

export function createAlerter() {
  let ctx = null;

  return {
    unlock() {
      try {
        const AC = globalThis.AudioContext || globalThis.webkitAudioContext;
        if (!AC) return;
        if (!ctx) ctx = new AC();
        if (ctx.state === 'suspended') ctx.resume().catch(() => {});
      } catch {
        ctx = null;
      }
    },
    ring() {
      try {
        if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 400]);
      } catch {
        /* not allowed: the screen still shows the offer */
      }
      if (!ctx || ctx.state !== 'running') return;
      // Three rising tones, 0.2 s each, loud enough to hear from a pocket but not a siren.
      const t0 = ctx.currentTime + 0.02;
      [660, 880, 1100].forEach((hz, i) => {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = 'sine';
        osc.frequency.value = hz;
        const start = t0 + i * 0.25;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.5, start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.2);
        osc.connect(gain).connect(ctx.destination);
        osc.start(start);
        osc.stop(start + 0.22);
      });
    },
  };
}
