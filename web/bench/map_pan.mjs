// Frame times of the map while it pans, in headless Chromium: a RoadMap of 1,100 × 820 CSS px
// over the real map with 10,000 plain markers (a crowd) and 300 labelled incidents (one in three
// ringed), panned 3 px right and 2 px down and drawn in every animation frame for 6 s.
//
//   node web/bench/map_pan.mjs LABEL [WEB_DIR]
//
// WEB_DIR (default web/ of this checkout) is served as the page's files (DISPATCH_WEB_DIR), so
// another commit's map.js can be compared in the same sitting: `git archive REV web | tar -x -C
// DIR` and pass DIR/web. Needs target/debug/dispatch (or DISPATCH_BIN) and ../shared/data.
import { join } from 'node:path';
import { startServer, openBrowser, testRoster, ROOT } from '../tests/support.mjs';
const which = process.argv[2] || 'this';
const webDir = process.argv[3] || join(ROOT, 'web');
const { roster } = testRoster();
const srv = await startServer({ roster, env: { DISPATCH_WEB_DIR: webDir } });
const { browser, page } = await openBrowser();
try {
  await page.goto(`${srv.base}/console/`);
  const r = await page.evaluate(async () => {
    const { RoadMap } = await import('/common/map.js');
    const div = document.createElement('div');
    div.style.cssText = 'position:fixed;left:0;top:0;width:1100px;height:820px;z-index:99';
    document.body.appendChild(div);
    const map = await RoadMap.create(div);
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const ms = [];
    const colors = ['#188038', '#f29900', '#1a73e8', '#8d6e63'];
    for (let i = 0; i < 10000; i++) {
      const p = map.unproject(rnd() * 1100, rnd() * 820);
      ms.push({ id: `c${i}`, lat: p.lat, lon: p.lon, shape: 'circle', color: colors[i % 4], size: 6 });
    }
    for (let i = 0; i < 300; i++) {
      const p = map.unproject(rnd() * 1100, rnd() * 820);
      ms.push({ id: `i${i}`, lat: p.lat, lon: p.lon, shape: 'circle', color: '#c5221f', size: 9, stroke: '#ffffff', ring: i % 3 ? null : '#c5221f', label: `E0${2000 + i}` });
    }
    map.setMarkers(ms);
    map.setUnderlay(() => {});
    map.setOverlay(() => {});
    const deltas = [];
    await new Promise((res) => {
      let last = performance.now();
      const t0 = last;
      const step = (t) => {
        deltas.push(t - last);
        last = t;
        map.panBy(3, 2);
        map.drawNow();
        if (t - t0 < 6000) requestAnimationFrame(step);
        else res();
      };
      requestAnimationFrame(step);
    });
    deltas.sort((a, b) => a - b);
    const at = (p) => deltas[Math.min(deltas.length - 1, Math.ceil((p / 100) * deltas.length) - 1)];
    return { frames: deltas.length, p50: at(50), p95: at(95) };
  });
  console.log(which, JSON.stringify(r));
} finally {
  await browser.close();
  await srv.stop();
}
