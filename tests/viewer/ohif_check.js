// Drive OHIF in Debian's chromium (playwright-core, never a browser download) and record what
// a radiologist sees: the study list, every SR measurement (labels + the slice shown), the
// SEG segments, console errors, screenshots. The pytest side (test_ohif.py) decides pass/fail.
//
// usage: node ohif_check.js SPEC.json RESULT.json
//   SPEC: {viewer_url, out_dir, node_modules, timepoints: [{label, study_uid, measurements, forward, back}],
//          statements: [{label, study_uid, sr_description}], statements_out}
'use strict';
const fs = require('fs');
const path = require('path');

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(path.join(spec.node_modules, 'playwright-core'));
// --disable-dev-shm-usage: a container's small /dev/shm would starve the renderer of shared memory
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-gl=swiftshader', '--enable-unsafe-swiftshader'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function text(page, sel) {
  const loc = page.locator(sel);
  return (await loc.count()) ? (await loc.first().innerText()).trim() : '';
}

async function poll(fn, timeoutMs, stepMs = 500) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last.ok) return last;
    await sleep(stepMs);
  }
  return last;
}

// the tour and the notice OHIF shows on a first visit; a click that does not land now (the tour's
// overlay is still closing) is tried again by the caller's next poll
async function dismissFirstRunDialogs(page) {
  for (const name of ['Skip all', 'Confirm and hide']) {
    const b = page.getByText(name, { exact: true });
    if (await b.count()) await b.first().click({ timeout: 3000 }).catch(() => {});
  }
}

// the measurement labels drawn on the image: one box per SVG text of an annotation
function labelBoxes() {
  return Array.from(document.querySelectorAll('svg g[data-annotation-uid] > text'))
    .map((t) => {
      const r = t.getBoundingClientRect();
      return { uid: t.parentElement.getAttribute('data-annotation-uid'), text: t.textContent,
        x: r.x, y: r.y, w: r.width, h: r.height };
    })
    .filter((b) => b.w > 0 && b.h > 0);
}

async function state(page) {
  return {
    overlay: await text(page, '[data-cy="viewport-overlay-bottom-right"]'),
    viewport: await text(page, '[data-cy="viewport-grid"]'),
    labels: await page.evaluate(labelBoxes),
  };
}

// wait until the viewport shows SR labels (mm values) that stay the same for two polls;
// after a step, wait for the view to change from `before` (or 5 s: two measurements
// drawn on one slice look the same)
async function settledLabels(page, timeoutMs, before = null) {
  let prev = null;
  const start = Date.now();
  return poll(async () => {
    const s = await state(page);
    const changed = before === null || s.overlay !== before.overlay || s.viewport !== before.viewport
      || Date.now() - start > 5000;
    const ok = /\d mm/.test(s.viewport) && changed && prev !== null && prev.viewport === s.viewport
      && prev.overlay === s.overlay;
    prev = s;
    return { ok, ...s };
  }, timeoutMs, 700);
}

async function checkSr(page, tp, shot) {
  const t0 = Date.now();
  const out = { loaded: false, states: [], attempts: ['double click'] };
  const row = page.locator('[data-cy="series-description-label"]', { hasText: tp.sr_description }).first();
  // the SR viewport's two arrows (top right) step through the measurements, cyclically
  const arrows = page.locator('div.cursor-pointer:has(svg > title:text-is("arrow-left"))');
  const next = async () => ((await arrows.count()) > 1 ? arrows.nth(1) : arrows.first());
  await row.dblclick();
  await poll(async () => ({ ok: (await arrows.count()) > 0 }), 30000);
  let s = await settledLabels(page, 20000);
  // what each try left on screen (for the test's message when none drew a label)
  out.seen = [];
  const look = async () => out.seen.push({ overlay: s.overlay, viewport: s.viewport.slice(0, 400),
    arrows: await arrows.count(), s: (Date.now() - t0) / 1000 });
  await look();
  // software WebGL on a busy machine sometimes leaves the first drawing out: a step to the next
  // measurement and back to the first draws it again (a step forward alone would not do: the next
  // group may hold no length, a reference region's POINT); without the SR viewport, load the SR again
  for (let i = 0; !s.ok && i < 4; i += 1) {
    if (await arrows.count()) {
      out.attempts.push('next and back arrows');
      const before = await state(page);
      await (await next()).click();
      await poll(async () => {
        const now = await state(page);
        return { ok: now.overlay !== before.overlay || now.viewport !== before.viewport };
      }, 8000);
      await arrows.first().click();
    } else {
      out.attempts.push('double click');
      await row.dblclick();
    }
    s = await settledLabels(page, 20000);
    await look();
  }
  if (!s.ok) {
    out.screenshot = path.join(spec.out_dir, `${tp.label}-2-sr-NOT-DRAWN.png`);
    await page.screenshot({ path: out.screenshot });
    return out;
  }
  out.loaded = true;
  // every measurement in turn, or the first `forward` then the last `back` (the left arrow from
  // the first goes round to the last): a long SR's last groups without stepping through all
  const forward = tp.forward ?? tp.measurements;
  for (let k = 0; k < forward; k += 1) {
    const file = `${tp.label}-2-sr-${k + 1}.png`;
    await page.screenshot({ path: path.join(spec.out_dir, file) });
    out.states.push({ overlay: s.overlay, viewport: s.viewport, labels: s.labels, screenshot: shot(file) });
    if (k + 1 < forward) {
      await (await next()).click();
      const moved = await settledLabels(page, 15000, s);
      s = moved.ok ? moved : await state(page);
    }
  }
  for (let k = 0; k < (tp.back ?? 0); k += 1) {
    await arrows.first().click();
    const moved = await settledLabels(page, 15000, s);
    s = moved.ok ? moved : await state(page);
    const file = `${tp.label}-2-sr-back-${k + 1}.png`;
    await page.screenshot({ path: path.join(spec.out_dir, file) });
    out.states.push({ overlay: s.overlay, viewport: s.viewport, labels: s.labels, screenshot: shot(file), back: k + 1 });
  }
  return out;
}

async function checkSeg(page, tp, shot) {
  const out = { prompt: false, panel: '', screenshot: '' };
  await page.locator('[data-cy="series-description-label"]', { hasText: tp.seg_description }).first().dblclick();
  const yes = page.getByText('Yes', { exact: true });
  const asked = await poll(async () => ({ ok: (await yes.count()) > 0 }), 30000);
  out.prompt = asked.ok;
  if (asked.ok) await yes.first().click();
  const btn = page.locator('[data-cy="panelSegmentation-btn"]');
  if (await btn.count()) await btn.first().click();
  const panel = await poll(async () => {
    const t = await page.evaluate(() => document.body.innerText);
    return { ok: tp.segments.every((label) => t.includes(label)), t };
  }, 30000);
  out.panel = panel.t;
  // a click on the first segment's row jumps to that lesion
  const first = page.getByText(tp.segments[0], { exact: true });
  if (await first.count()) await first.last().click();
  await page.mouse.move(700, 900);  // away from the panel: its hover card would hide the image
  await sleep(3000);  // let the overlay render before the screenshot
  out.overlay = await text(page, '[data-cy="viewport-overlay-bottom-right"]');
  const file = `${tp.label}-3-seg.png`;
  await page.screenshot({ path: path.join(spec.out_dir, file) });
  out.screenshot = shot(file);
  return out;
}

// the yellow warning sign some series rows carry: hover it and read the tooltip
async function seriesWarnings(page) {
  const out = {};
  const rows = page.locator('[data-cy^="study-browser-thumbnail"]:has(g#status-warning)');
  for (let i = 0; i < await rows.count(); i += 1) {
    const row = rows.nth(i);
    const name = await row.locator('[data-cy="series-description-label"]').first().innerText();
    await row.locator('g#status-warning').first().hover();
    const tip = await poll(async () => {
      const t = page.locator('[role="tooltip"]');
      return { ok: (await t.count()) > 0, t: (await t.count()) ? await t.first().innerText() : '' };
    }, 3000);
    out[name] = tip.t;
  }
  // close the tooltip: it would cover the next row and catch the next click
  await page.mouse.move(800, 500);
  await page.keyboard.press('Escape');
  await poll(async () => ({ ok: (await page.locator('[role="tooltip"]').count()) === 0 }), 5000, 200);
  return out;
}

async function checkTimepoint(page, tp, errors) {
  const shot = (f) => path.join(spec.out_dir, f);
  const result = { label: tp.label, errors: {} };
  const t0 = Date.now();
  result.loads = 0;
  // the study list and a first image; a page left blank on a busy machine is loaded once more
  for (let shown = { ok: false }; !shown.ok && result.loads < 2; result.loads += 1) {
    await page.goto(`${spec.viewer_url}viewer?StudyInstanceUIDs=${tp.study_uid}`);
    shown = await poll(async () => {
      await dismissFirstRunDialogs(page);
      const n = await page.locator('[data-cy="series-description-label"]').count();
      return { ok: n >= tp.min_series && /\(\d+\/\d+\)/.test(await text(page, '[data-cy="viewport-overlay-bottom-right"]')) };
    }, 90000, 1000);
  }
  await dismissFirstRunDialogs(page);
  await sleep(1000);
  result.series = await page.locator('[data-cy="series-description-label"]').allInnerTexts();
  result.study_panel = await text(page, '[data-cy="studyBrowser-panel"]');
  await page.screenshot({ path: shot(`${tp.label}-1-study-list.png`) });
  result.load_s = (Date.now() - t0) / 1000;
  result.warnings = await seriesWarnings(page);
  result.errors.load = errors.splice(0);
  result.sr = await checkSr(page, tp, shot);
  result.errors.sr = errors.splice(0);
  result.seg = await checkSeg(page, tp, shot);
  result.errors.seg = errors.splice(0);
  result.elapsed_s = (Date.now() - t0) / 1000;
  return result;
}

// an SR that states something without a number ('No lesion', a failure): it loads, and the viewport
// shows an image (OHIF 3.12 dropped the whole viewer for a group with no coordinate)
async function checkStatement(page, st, errors) {
  const shot = (f) => path.join(spec.out_dir, f);
  const out = { label: st.label, errors: {} };
  await page.goto(`${spec.viewer_url}viewer?StudyInstanceUIDs=${st.study_uid}`);
  const row = page.locator('[data-cy="series-description-label"]', { hasText: st.sr_description });
  await poll(async () => {
    await dismissFirstRunDialogs(page);
    return { ok: (await row.count()) > 0 && /\(\d+\/\d+\)/.test(await text(page, '[data-cy="viewport-overlay-bottom-right"]')) };
  }, 90000, 1000);
  await dismissFirstRunDialogs(page);
  out.errors.load = errors.splice(0);
  await row.first().dblclick();
  const arrows = page.locator('div.cursor-pointer:has(svg > title:text-is("arrow-left"))');
  const shown = await poll(async () => ({
    ok: (await arrows.count()) > 0 && /^I:\d+ /.test(await text(page, '[data-cy="viewport-overlay-bottom-right"]')),
  }), 30000);
  await sleep(2000);  // an error thrown while placing the groups comes right after the load
  out.shown = shown.ok;
  out.overlay = await text(page, '[data-cy="viewport-overlay-bottom-right"]');
  out.errors.sr = errors.splice(0);
  const file = `${st.label}-sr.png`;
  await page.screenshot({ path: shot(file) });
  out.screenshot = shot(file);
  return out;
}

(async () => {
  fs.mkdirSync(spec.out_dir, { recursive: true });
  const results = [];
  // each study in a fresh browser, as a radiologist opening it from the worklist: nothing of the study
  // before is left in the viewer's memory, nor in the browser's software WebGL (with one browser for
  // every study, two CI runs drew no SR label on the sixth study; Chromium also caps the WebGL contexts
  // alive at once); each starts with what the last one stored (the first visit's tour and notice
  // dismissed), as the radiologist's browser does. Lost WebGL contexts are recorded (`webgl`)
  let stored;
  const fresh = async (check, item) => {
    const browser = await chromium.launch({ executablePath: spec.chromium, headless: true, args: ARGS });
    try {
      const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, storageState: stored });
      const page = await context.newPage();
      const errors = [];
      const webgl = [];
      // OHIF logs what its error boundary caught ("Route viewer Error Boundary TypeError: ...") at debug level
      page.on('console', (m) => {
        if (m.type() === 'error' || /Error Boundary/.test(m.text())) errors.push(m.text());
        else if (/context.{0,20}lost|CONTEXT_LOST|WebGL contexts/i.test(m.text())) webgl.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      page.on('crash', () => errors.push('the page crashed'));
      try {
        return { ...await check(page, item, errors), webgl };
      } finally {
        stored = await context.storageState();
      }
    } finally {
      await browser.close();
    }
  };
  for (const tp of spec.timepoints) {
    // a study whose SR drew nothing after every step is opened once more, in another fresh browser
    // (the radiologist's reload); what the first try saw is kept beside the second's
    const first = await fresh(checkTimepoint, tp);
    results.push(first.sr.loaded ? first : { ...await fresh(checkTimepoint, tp), first_try: first });
    fs.writeFileSync(process.argv[3], JSON.stringify(results, null, 1));
  }
  const statements = [];
  for (const st of spec.statements ?? []) {
    statements.push(await fresh(checkStatement, st));
    fs.writeFileSync(spec.statements_out, JSON.stringify(statements, null, 1));
  }
})().catch((e) => { console.error(e); process.exit(1); });
