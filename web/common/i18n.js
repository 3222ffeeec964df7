// Message catalogues and locale formatting for both apps. Each app keeps its own catalogue
// files (messages.en.js, messages.zh-CN.js: `export default { key: 'text with {param}' }`, a
// value may also be a function of the params) and hands them here:
//
//   const i18n = createI18n({ catalogues: { en, 'zh-CN': zh }, storageKey: 'console.lang' });
//   i18n.t('queue.title', { n: 3 });   i18n.lang;   i18n.setLang('en');   i18n.onChange(cb);
//   i18n.number(1234.5)  i18n.time(ms)  i18n.distance(metres)  i18n.duration(seconds)
//   i18n.clock(ms) → "m:ss" (negative clamps to 0:00)
//
// The language is the one remembered in localStorage, else the browser's first zh* language
// gives zh-CN, else English. A key missing from a catalogue falls back to English, then to the
// key itself (and is logged once), so a missing string is visible, never a crash.

export const LANGS = ['zh-CN', 'en'];

/** zh* → zh-CN, anything else → en. */
export function pickLang(languages) {
  for (const l of languages || []) {
    if (typeof l !== 'string') continue;
    if (l.toLowerCase().startsWith('zh')) return 'zh-CN';
    if (l.toLowerCase().startsWith('en')) return 'en';
  }
  return 'en';
}

export function createI18n({ catalogues, storageKey = 'lang', languages, storage } = {}) {
  const store = storage === undefined ? safeLocalStorage() : storage;
  const listeners = [];
  const missing = new Set();
  let lang;
  const remembered = store && store.getItem(storageKey);
  if (remembered && catalogues[remembered]) lang = remembered;
  else lang = pickLang(languages || (typeof navigator !== 'undefined' ? navigator.languages || [navigator.language] : []));
  if (!catalogues[lang]) lang = 'en';

  let nf, tf, tfs;
  function makeFormatters() {
    nf = new Intl.NumberFormat(lang);
    tf = new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    tfs = new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit', hour12: false });
  }
  makeFormatters();

  function t(key, params = {}) {
    let msg = catalogues[lang] && catalogues[lang][key];
    if (msg === undefined) msg = catalogues.en && catalogues.en[key];
    if (msg === undefined) {
      if (!missing.has(key)) {
        missing.add(key);
        console.warn(`i18n: no message for "${key}"`);
      }
      return key;
    }
    if (typeof msg === 'function') return msg(params, api);
    return msg.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined || params[k] === null ? m : String(params[k])));
  }

  function unit(value, u, display = 'short', digits = 0) {
    try {
      return new Intl.NumberFormat(lang, { style: 'unit', unit: u, unitDisplay: display, maximumFractionDigits: digits }).format(value);
    } catch {
      return `${nf.format(value)} ${u}`;
    }
  }

  const api = {
    get lang() {
      return lang;
    },
    t,
    setLang(l) {
      if (!catalogues[l] || l === lang) return;
      lang = l;
      makeFormatters();
      if (store) {
        try {
          store.setItem(storageKey, l);
        } catch {
          /* private mode: not remembered */
        }
      }
      if (typeof document !== 'undefined') document.documentElement.lang = l;
      for (const cb of listeners) cb(l);
    },
    onChange(cb) {
      listeners.push(cb);
    },
    number: (n) => nf.format(n),
    time: (ms) => tf.format(new Date(ms)),
    timeShort: (ms) => tfs.format(new Date(ms)),
    /** metres → "850 m" / "1.2 km" in the locale. */
    distance(m) {
      if (!Number.isFinite(m)) return '–';
      return m < 1000 ? unit(Math.round(m), 'meter') : unit(m / 1000, 'kilometer', 'short', 1);
    },
    /** seconds → "2 min 20 s" / "1 h 5 min" (short units of the locale). */
    duration(s) {
      if (!Number.isFinite(s)) return '–';
      s = Math.max(0, Math.round(s));
      const h = Math.floor(s / 3600);
      const m = Math.floor((s % 3600) / 60);
      const sec = s % 60;
      const parts = [];
      if (h) parts.push(unit(h, 'hour', 'narrow'));
      if (m || h) parts.push(unit(m, 'minute', 'narrow'));
      if (!h && (sec || !m)) parts.push(unit(sec, 'second', 'narrow'));
      return parts.join(' ');
    },
    /** milliseconds → "m:ss" for countdowns; negative shows 0:00. */
    clock(ms) {
      const s = Math.max(0, Math.ceil(ms / 1000));
      const m = Math.floor(s / 60);
      return `${m}:${String(s % 60).padStart(2, '0')}`;
    },
  };
  if (typeof document !== 'undefined') document.documentElement.lang = lang;
  return api;
}

function safeLocalStorage() {
  try {
    return typeof localStorage !== 'undefined' ? localStorage : null;
  } catch {
    return null;
  }
}
