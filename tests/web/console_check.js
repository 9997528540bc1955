// Drive the admins' console in Debian's chromium (playwright-core, never a browser download)
// as an admin would; the pytest side (test_console_browser.py) runs the peers and decides.
// Steps that need the world outside the browser (send a study, stop or start Orthanc) are
// asked of the pytest side through files: CTL/<step>.req, answered by CTL/<step>.done.
//
// usage: node console_check.js SPEC.json RESULT.json
//   SPEC: {url, user, password, node_modules, chromium, ctl, shots, broken, fixed, route}
'use strict';
const fs = require('fs');
const path = require('path');

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(path.join(spec.node_modules, 'playwright-core'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const result = { steps: [] };
const note = (step, data) => { result.steps.push({ step, at: Date.now(), ...data }); };

async function ask(step) {
  fs.writeFileSync(path.join(spec.ctl, `${step}.req`), '');
  const done = path.join(spec.ctl, `${step}.done`);
  for (let i = 0; i < 1200; i++) {
    if (fs.existsSync(done)) return fs.readFileSync(done, 'utf8').trim();
    await sleep(100);
  }
  throw new Error(`pytest did not do ${step}`);
}

async function setEditor(page, text) {
  await page.locator('#text').fill(text);
}

async function main() {
  const browser = await chromium.launch({ executablePath: spec.chromium,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30000);
  try {
    // sign in
    await page.goto(`${spec.url}/`);
    await page.fill('input[name=username]', spec.user);
    await page.fill('input[name=password]', spec.password);
    await page.click('button[type=submit]');
    await page.waitForSelector('#overview');
    note('signed in', { url: page.url() });

    // a study arrives: RECEIVING ... DONE on the overview, live
    const first = await ask('send-first');
    const row = page.locator(`#recent tr[data-uid="${first}"] td.state`);
    const seen = new Set();
    for (let i = 0; i < 600; i++) {
      if (await row.count()) seen.add((await row.first().innerText()).trim());
      if (seen.has('DONE')) break;
      await sleep(100);
    }
    note('first study', { states: [...seen] });
    await page.screenshot({ path: path.join(spec.shots, 'overview.png'), fullPage: true });

    // the route editor: a broken route is refused at file:line
    await page.goto(`${spec.url}/routes`);
    await setEditor(page, spec.broken);
    await page.click('#check');
    await page.waitForSelector('#errors li');
    note('broken', { errors: await page.locator('#errors li').allInnerTexts() });

    // the corrected route, tried against the stored study
    await setEditor(page, spec.fixed);
    await page.selectOption('#study_uid', first);
    await page.click('#check');
    await page.waitForSelector('#would-run');
    note('tried', { would_run: (await page.locator('#would-run').innerText()).trim(),
      valid: await page.locator('#valid').count() });
    await page.fill('#comment', 'route for the browser test');
    await page.click('#save');
    await page.waitForSelector('#saved');
    note('saved', { text: (await page.locator('#saved').innerText()).trim() });
    await page.screenshot({ path: path.join(spec.shots, 'route-editor.png'), fullPage: true });

    // the node uses it; with Orthanc stopped the outputs become dead letters
    await ask('stop-orthanc');
    const second = await ask('send-second');
    await page.goto(`${spec.url}/studies/${second}`);
    const resend = page.locator('#deliveries button.resend');
    // the dead letter shows first; the router marks the study FAILED on its next tick
    const failed = async () => (await resend.count()) > 0
      && (await page.locator('#study-state').innerText()).trim() === 'FAILED';
    for (let i = 0; i < 900 && !(await failed()); i++) await sleep(100);
    const jobs = await page.locator('#jobs').innerText();
    note('dead letter', { resend_buttons: await resend.count(), jobs,
      state: (await page.locator('#study-state').innerText()).trim() });

    // Orthanc back; resend from the page; delivered
    await ask('start-orthanc');
    const buttons = await resend.count();
    for (let i = 0; i < buttons; i++) {
      await resend.first().click();
      await sleep(300);
    }
    let cells = [];
    for (let i = 0; i < 600; i++) {
      cells = await page.locator('#deliveries tr[data-outbox] td.state').allInnerTexts();
      if (cells.length && cells.every((c) => c.trim() === 'SENT')) break;
      await sleep(100);
    }
    note('resent', { states: cells.map((c) => c.trim()),
      times_sent: (await page.locator('#deliveries td.times-sent').allInnerTexts()).map((c) => c.trim()),
      study_state: (await page.locator('#study-state').innerText()).trim() });
    await page.screenshot({ path: path.join(spec.shots, 'study.png'), fullPage: true });

    await page.goto(`${spec.url}/audit`);
    note('audit', { rows: await page.locator('#audit tr').allInnerTexts() });
  } catch (e) {
    result.error = String(e && e.stack || e);
    await page.screenshot({ path: path.join(spec.shots, 'failure.png'), fullPage: true }).catch(() => {});
  } finally {
    await browser.close();
    fs.writeFileSync(process.argv[3], JSON.stringify(result, null, 1));
  }
}

main();
