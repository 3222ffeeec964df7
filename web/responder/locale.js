// Language and formatting for the responder app: Chinese (zh-CN) or English, chosen from the
// phone's languages and switchable; every visible string comes from a catalogue, and numbers,
// durations, distances and clock times are formatted with Intl for that language.
import en from './messages.en.js';
import zh from './messages.zh-CN.js';

import { createI18n } from '../common/i18n.js';

export const CATALOGUES = { en, 'zh-CN': zh };

/**
 * The app's language (remembered, else the phone's) with the shared catalogue mechanism, plus
 * the app's own wording of times and distances. `locale()` is the current one; it changes
 * when the volunteer switches language.
 */
export function createAppLocale() {
  const i18n = createI18n({ catalogues: CATALOGUES, storageKey: 'responder.lang' });
  let current = createLocale(i18n.lang, i18n.t);
  i18n.onChange(() => {
    current = createLocale(i18n.lang, i18n.t);
  });
  return {
    locale: () => current,
    setLang: (l) => i18n.setLang(l),
    onChange: (cb) => i18n.onChange(cb),
  };
}

/** Formatting (and, without `translate`, the catalogue lookup) bound to one language. */
export function createLocale(lang, translate) {
  const cat = CATALOGUES[lang] || en;
  const intlLang = lang === 'zh-CN' ? 'zh-CN' : 'en-GB';
  const num = (opts) => new Intl.NumberFormat(intlLang, opts);
  const unit = (u, n, display = 'long') =>
    num({ style: 'unit', unit: u, unitDisplay: display, maximumFractionDigits: 0 }).format(n);

  function lookup(key, params = {}) {
    let s = cat[key] ?? en[key] ?? key;
    for (const [k, v] of Object.entries(params)) s = s.split(`{${k}}`).join(String(v));
    return s;
  }

  const t = translate || lookup;
  return {
    lang,
    t,
    /** 178 → "180 m"; 1534 → "1.5 km". */
    distance(m) {
      if (m == null || !Number.isFinite(m)) return '';
      if (m < 1000) {
        const r = m < 100 ? Math.round(m / 5) * 5 : Math.round(m / 10) * 10;
        return num({ style: 'unit', unit: 'meter', unitDisplay: 'short', maximumFractionDigits: 0 }).format(r);
      }
      return num({ style: 'unit', unit: 'kilometer', unitDisplay: 'short', maximumFractionDigits: 1 }).format(m / 1000);
    },
    /** 142 s → "3 minutes" (never less than one minute: nobody walks anywhere in 0 minutes). */
    duration(s) {
      if (s == null || !Number.isFinite(s)) return '';
      const min = Math.max(1, Math.round(s / 60));
      if (min < 60) return unit('minute', min);
      const h = Math.floor(min / 60);
      const rest = min % 60;
      return rest ? `${unit('hour', h)} ${unit('minute', rest)}` : unit('hour', h);
    },
    /** A time-bank balance: 84 → "1 hour 24 minutes"; 0 → "0 minutes". */
    hoursMinutes(totalMin) {
      const m = Math.max(0, Math.round(totalMin || 0));
      const h = Math.floor(m / 60);
      const rest = m % 60;
      if (!h) return unit('minute', rest);
      return rest ? `${unit('hour', h)} ${unit('minute', rest)}` : unit('hour', h);
    },
    minutes(n) {
      return unit('minute', n);
    },
    /** A countdown: 24 → "0:24". */
    countdown(s) {
      const v = Math.max(0, Math.ceil(s));
      const mm = Math.floor(v / 60);
      const ss = String(v % 60).padStart(2, '0');
      return `${num({}).format(mm)}:${ss}`;
    },
    clock(ms) {
      return new Intl.DateTimeFormat(intlLang, { hour: '2-digit', minute: '2-digit' }).format(new Date(ms));
    },
    dateTime(ms) {
      return new Intl.DateTimeFormat(intlLang, {
        day: 'numeric',
        month: 'short',
        hour: '2-digit',
        minute: '2-digit',
      }).format(new Date(ms));
    },
    number(n) {
      return num({}).format(n);
    },
  };
}
