// The manager dashboards in real headless Chromium.
//
// Started by tests/e2e/browser.rs, which runs the real `cxlake` binary on
// generated data and passes:
//   CXLAKE_URL        http://127.0.0.1:PORT
//   CXLAKE_KEY        an admin key of one tenant (signs in)
//   CXLAKE_EXPERIMENT key of a running experiment of that tenant
//   CXLAKE_ARTIFACTS  folder for screenshots
//   CHROMIUM          the browser (default /usr/bin/chromium)
//
// Checks: sign-in is required; every page loads with no console error and
// no failed request, on a laptop and a phone; the overview's figures equal
// GET /v1/kpis for the same view; filters change the URL and the data;
// the CSV download equals the table; a trend chart's own CSV link downloads
// the chart's numbers; date presets; the staffing interval;
// the scripts' intervals are the API's; language switch; sign-out.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.CXLAKE_URL;
const KEY = process.env.CXLAKE_KEY;
const EXPERIMENT = process.env.CXLAKE_EXPERIMENT || 'greeting_v2';
const ARTIFACTS = process.env.CXLAKE_ARTIFACTS || 'target/browser-artifacts';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
assert.ok(BASE && KEY, 'CXLAKE_URL and CXLAKE_KEY must be set (run through tests/e2e/browser.rs)');

/// A local date `n` days from today, YYYY-MM-DD.
function daysFromNow(n) {
  return new Date(Date.now() + n * 86400000).toISOString().slice(0, 10);
}

const PAGES = [
  ['overview', '/'],
  ['channels', '/channels'],
  ['teams', '/teams'],
  ['tags', '/tags'],
  ['traffic', '/traffic'],
  ['scripts', '/scripts'],
  ['experiments', '/experiments'],
  // The generated traffic predates the experiment's start: a date range
  // in the URL is the results window.
  ['experiment', `/experiments/${encodeURIComponent(EXPERIMENT)}?from=${daysFromNow(-30)}&to=${daysFromNow(1)}`],
  ['staffing', '/staffing'],
];

const VIEWPORTS = {
  laptop: { width: 1366, height: 850 },
  phone: { width: 390, height: 844 },
};

let browser;
before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});
after(async () => {
  await browser?.close();
});

/// A page that records console errors, page errors and failed requests.
async function watchedPage(context) {
  const page = await context.newPage();
  // A debug build on a busy machine renders a page in seconds, not ms.
  page.setDefaultTimeout(90000);
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A download navigation is "aborted" by design.
    if (!r.url().includes('format=csv')) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return { page, problems };
}

async function signIn(page) {
  await page.goto(`${BASE}/login`);
  await page.fill('input[name=key]', KEY);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

async function signedInContext(viewport = VIEWPORTS.laptop) {
  const context = await browser.newContext({ viewport, locale: 'en-US', acceptDownloads: true });
  const { page } = await watchedPage(context);
  await signIn(page);
  await page.close();
  return context;
}

async function api(pathAndQuery) {
  const r = await fetch(`${BASE}${pathAndQuery}`, { headers: { Authorization: `Bearer ${KEY}` } });
  const text = await r.text();
  assert.equal(r.status, 200, `${pathAndQuery}: ${text}`);
  return JSON.parse(text);
}

/// Digits of a formatted count ("1,234" → 1234).
const count = (text) => Number(text.replace(/[^0-9]/g, ''));

function parseCsv(text) {
  const rows = [];
  for (const line of text.trim().split('\n')) {
    const fields = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted) {
        if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; }
        else if (c === '"') quoted = false;
        else cur += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') { fields.push(cur); cur = ''; }
      else cur += c;
    }
    fields.push(cur);
    rows.push(fields);
  }
  return rows;
}

test('sign-in is required and comes back to the page asked for', async () => {
  const context = await browser.newContext();
  const { page } = await watchedPage(context);
  await page.goto(`${BASE}/channels?bucket=week`);
  assert.match(new URL(page.url()).pathname, /^\/login$/);
  assert.equal(await page.locator('input[name=key]').count(), 1);
  // A wrong key is refused on the form.
  await page.fill('input[name=key]', 'cxk_nope_nope');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.match(await page.content(), /not valid/);
  await page.fill('input[name=key]', KEY);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  const url = new URL(page.url());
  assert.equal(url.pathname, '/channels');
  assert.equal(url.searchParams.get('bucket'), 'week');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'cxlake_session');
  assert.ok(session?.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Strict');
  await context.close();
});

test('every page loads cleanly and reads on a laptop and a phone (screenshots saved)', async () => {
  const context = await signedInContext(VIEWPORTS.laptop);
  for (const [pageName, pagePath] of PAGES) {
    const { page, problems } = await watchedPage(context);
    const resp = await page.goto(`${BASE}${pagePath}`, { waitUntil: 'load' });
    assert.equal(resp.status(), 200, `${pagePath}: ${resp.status()} ${(await page.content()).slice(0, 400)}`);
    assert.equal(await page.locator('h1').count(), 1, `${pagePath} has a heading`);
    assert.equal(await page.locator('nav.pages a[aria-current=page]').count(), 1, `${pagePath} marks its nav entry`);
    assert.equal(await page.locator('a.csv').count(), 1, `${pagePath} offers its CSV`);
    // The same document re-laid out at each width (no reload: the server
    // renders one HTML for every screen).
    for (const [device, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      // Nothing is wider than the screen (tables scroll inside their box).
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${pagePath} scrolls sideways by ${overflow}px on a ${device}`);
      await page.screenshot({ path: path.join(ARTIFACTS, `${pageName}-${device}.png`), fullPage: true });
    }
    assert.deepEqual(problems, [], pagePath);
    await page.close();
  }
  await context.close();
});

/// The figure of each tile and GET /v1/kpis's for the same view.
async function compareOverview(page, query) {
  const from = await page.inputValue('input[name=from]');
  const to = await page.inputValue('input[name=to]');
  const kpis = await api(`/v1/kpis?from=${from}&to=${to}${query}`);
  const k = kpis.kpis;
  const expected = {
    conversations: k.conversations.value,
    frt_s: k.frt_s.mean,
    human_frt_s: k.human_frt_s.mean,
    response_s: k.response_s.mean,
    handling_s: k.handling_s.mean,
    sla_attainment: k.sla_attainment.value,
    csat: k.csat.mean,
    resolution_rate: k.resolution_rate.value,
    reopen_rate: k.reopen_rate.value,
    transfer_rate: k.transfer_rate.value,
    automation_rate: k.automation_rate.value,
    conversion_rate: k.conversion_rate.value,
  };
  let compared = 0;
  for (const [key, value] of Object.entries(expected)) {
    const shown = await page.locator(`#kpi-${key} .big`).getAttribute('data-value');
    if (value === null || value === undefined) {
      assert.equal(shown, '', `${key}: the API has no value`);
    } else {
      assert.ok(Math.abs(Number(shown) - value) <= 1e-9 * Math.max(1, Math.abs(value)), `${key}: page ${shown}, API ${value}`);
      compared++;
    }
  }
  assert.ok(compared >= 8, `compared ${compared} tiles`);
  // The visible conversations figure is the API's count.
  assert.equal(count(await page.locator('#kpi-conversations .big').innerText()), k.conversations.value);
  return k.conversations.value;
}

test('the overview shows the figures of /v1/kpis, and a filter changes URL and data', async () => {
  const context = await signedInContext();
  const { page, problems } = await watchedPage(context);
  await page.goto(`${BASE}/`);
  const all = await compareOverview(page, '');
  assert.ok(all > 0, 'the default view has conversations');

  // Filter by channel through the form: the URL keeps it, figures follow.
  await page.click('details.filters summary');
  await page.fill('input[name=channel]', 'whatsapp');
  await Promise.all([page.waitForNavigation(), page.click('form.controls button[type=submit]')]);
  assert.equal(new URL(page.url()).searchParams.get('channel'), 'whatsapp');
  const whatsapp = await compareOverview(page, '&channel=whatsapp');
  assert.ok(whatsapp > 0 && whatsapp < all, `whatsapp ${whatsapp} of ${all}`);

  // The bucket control changes the trend: weeks instead of days.
  const days = await page.locator('#kpi-conversations table tbody tr').count();
  await page.selectOption('select[name=bucket]', 'week');
  await Promise.all([page.waitForNavigation(), page.click('form.controls button[type=submit]')]);
  assert.equal(new URL(page.url()).searchParams.get('bucket'), 'week');
  assert.equal(new URL(page.url()).searchParams.get('channel'), 'whatsapp', 'the filter stays');
  const weeks = await page.locator('#kpi-conversations table tbody tr').count();
  assert.ok(weeks >= 1 && weeks < days, `${weeks} weeks vs ${days} days`);
  assert.deepEqual(problems, []);
  await context.close();
});

test('the CSV download is the table on the page', async () => {
  const context = await signedInContext();
  const { page, problems } = await watchedPage(context);
  await page.goto(`${BASE}/channels`);
  // The breakdown table (the trend's numbers follow in a table of their own).
  const rows = await page.locator('main section.card table').first().locator('tbody tr').evaluateAll((trs) =>
    trs.map((tr) => Array.from(tr.children).map((c) => c.textContent.trim())),
  );
  assert.ok(rows.length >= 2, 'several channels');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.csv')]);
  assert.match(download.suggestedFilename(), /channels\.csv$/);
  const csv = parseCsv(fs.readFileSync(await download.path(), 'utf8'));
  assert.deepEqual(csv[0].slice(0, 2), ['channel', 'conversations']);
  assert.deepEqual(
    csv.slice(1).map((r) => [r[0], Number(r[1])]),
    rows.map((r) => [r[0], count(r[1])]),
  );
  // CSAT column: the table rounds to two decimals (a tie such as 4.125 may
  // go either way: compare the numbers, not JavaScript's rounding).
  for (const [i, r] of csv.slice(1).entries()) {
    if (r[5] !== '') {
      const shown = Number(rows[i][5]);
      assert.ok(Math.abs(Number(r[5]) - shown) <= 0.005 + 1e-9, `csat of ${r[0]}: ${r[5]} shown as ${rows[i][5]}`);
    }
  }

  // The same for the filtered view, through the URL the form made.
  await page.goto(`${BASE}/channels?channel=whatsapp,line`);
  const [filtered] = await Promise.all([page.waitForEvent('download'), page.click('a.csv')]);
  const keys = parseCsv(fs.readFileSync(await filtered.path(), 'utf8')).slice(1).map((r) => r[0]).sort();
  assert.deepEqual(keys, ['line', 'whatsapp']);
  assert.deepEqual(problems, []);
  await context.close();
});

test('a trend chart\'s CSV link downloads the numbers the chart draws', async () => {
  const context = await signedInContext();
  const { page, problems } = await watchedPage(context);
  await page.goto(`${BASE}/channels?bucket=day`);
  const trend = page.locator('main section.card.trend');
  // The chart's numbers as the page shows them: a row per bucket, a column per channel.
  // (textContent: the table sits in a closed <details>.)
  const channels = (await trend.locator('table thead th').allTextContents()).map((t) => t.trim()).slice(1);
  const buckets = await trend.locator('table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => Array.from(tr.children).map((c) => c.textContent.trim())),
  );
  assert.ok(channels.length >= 2 && buckets.length >= 2, `${channels.length} channels × ${buckets.length} days`);
  const link = trend.locator('a.chart-csv');
  const href = new URL(await link.getAttribute('href'), BASE);
  assert.equal(href.searchParams.get('part'), 'trend');
  assert.equal(href.searchParams.get('bucket'), 'day', 'the view stays');
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.match(download.suggestedFilename(), /channels-trend\.csv$/);
  const csv = parseCsv(fs.readFileSync(await download.path(), 'utf8'));
  assert.deepEqual(csv[0], ['channel', 'bucket', 'conversations']);
  assert.equal(csv.length - 1, channels.length * buckets.length);
  for (const [channel, start, n] of csv.slice(1)) {
    const row = buckets.find((b) => start.startsWith(b[0]));
    assert.ok(row, `bucket ${start} on the page`);
    assert.equal(Number(n), count(row[1 + channels.indexOf(channel)]), `${channel} ${start}`);
  }

  // An overview tile's link: that tile's value per day.
  await page.goto(`${BASE}/`);
  const tile = page.locator('#kpi-conversations');
  const days = await tile.locator('table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => Array.from(tr.children).map((c) => c.textContent.trim())),
  );
  const [tileDownload] = await Promise.all([page.waitForEvent('download'), tile.locator('a.chart-csv').click()]);
  assert.match(tileDownload.suggestedFilename(), /overview-trend-conversations\.csv$/);
  const tileCsv = parseCsv(fs.readFileSync(await tileDownload.path(), 'utf8'));
  assert.deepEqual(tileCsv[0], ['kpi', 'unit', 'bucket', 'value']);
  assert.deepEqual(
    tileCsv.slice(1).map((r) => [r[0], r[2].slice(0, 10), Number(r[3])]),
    days.map((d) => ['conversations', d[0], count(d[1])]),
  );
  assert.deepEqual(problems, []);
  await context.close();
});

test('the experiment page shows the decision, SRM check and forest plot of the API', async () => {
  const context = await signedInContext();
  const { page, problems } = await watchedPage(context);
  // The experiment was registered after its traffic: look at the whole
  // generated period (a date range given in the URL is the results window).
  const from = daysFromNow(-30);
  const to = daysFromNow(1);
  await page.goto(`${BASE}/experiments?from=${from}&to=${to}`);
  await Promise.all([page.waitForNavigation(), page.click(`a[href*="/experiments/${EXPERIMENT}"]`)]);
  assert.equal(new URL(page.url()).searchParams.get('from'), from);
  const results = await api(`/v1/experiments/${EXPERIMENT}/results?from=${from}&to=${to}`);
  const units = results.variants.reduce((n, v) => n + v.units, 0);
  assert.ok(units > 0, 'the window holds exposures');
  assert.equal(await page.locator('main table tbody tr').first().locator('td').nth(2).innerText(), results.variants[0].units.toLocaleString('en-US'));
  const text = await page.locator('main').innerText();
  assert.ok(text.includes(results.decision.explanation), 'the decision sentence');
  assert.equal(await page.locator('svg.forest, .forest').count() >= 1, true, 'a forest plot');
  assert.deepEqual(problems, []);
  await context.close();
});

test('language switch and sign-out', async () => {
  const context = await signedInContext();
  const { page, problems } = await watchedPage(context);
  await page.goto(`${BASE}/traffic`);
  await Promise.all([page.waitForNavigation(), page.click('a[hreflang=zh-CN]')]);
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  assert.equal(new URL(page.url()).searchParams.get('lang'), 'zh-CN');
  // Navigation keeps the language.
  await Promise.all([page.waitForNavigation(), page.click('nav.pages a[href^="/channels"]')]);
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  await page.screenshot({ path: path.join(ARTIFACTS, 'channels-zh-laptop.png'), fullPage: true });
  // Sign out: back to /login, and pages need a sign-in again.
  await Promise.all([page.waitForNavigation(), page.click('form.logout button')]);
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.goto(`${BASE}/`);
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.deepEqual(problems, []);
  await context.close();
});

test('date presets and the staffing interval change the URL and the data', async () => {
  const context = await signedInContext();
  const { page, problems } = await watchedPage(context);
  await page.goto(`${BASE}/channels?channel=whatsapp,line`);
  await Promise.all([page.waitForNavigation(), page.click('p.presets a:text("Last week")')]);
  const url = new URL(page.url());
  const from = url.searchParams.get('from');
  const to = url.searchParams.get('to');
  assert.equal(new Date(`${from}T00:00:00Z`).getUTCDay(), 1, `last week starts on a Monday (${from})`);
  assert.equal((new Date(`${to}T00:00:00Z`) - new Date(`${from}T00:00:00Z`)) / 86400000, 7);
  assert.equal(url.searchParams.get('channel'), 'whatsapp,line', 'the filter stays');
  assert.equal(await page.getAttribute('p.presets a[aria-current]', 'href').then((h) => h.includes(`from=${from}`)), true);
  const kpis = await api(`/v1/kpis?from=${from}&to=${to}&channel=whatsapp,line`);
  const shown = await page.locator('main section.card table').first().locator('tbody tr').evaluateAll((trs) =>
    trs.reduce((n, tr) => n + Number(tr.children[1].textContent.replace(/[^0-9]/g, '')), 0),
  );
  assert.equal(shown, kpis.kpis.conversations.value, 'last week\'s conversations');

  // Staffing: tomorrow by default, in 30- or 15-minute intervals.
  await page.goto(`${BASE}/staffing`);
  // (The tenant reports in UTC: no settings were stored.)
  assert.equal(await page.inputValue('input[name=from]'), daysFromNow(1));
  assert.equal(await page.inputValue('select[name=bucket]'), '30min');
  const halfHours = await page.locator('details.data table tbody tr').count();
  await page.selectOption('select[name=bucket]', '15min');
  await Promise.all([page.waitForNavigation(), page.click('form.controls button[type=submit]')]);
  assert.equal(new URL(page.url()).searchParams.get('bucket'), '15min');
  const quarters = await page.locator('details.data table tbody tr').count();
  assert.equal(quarters, 2 * halfHours, `${quarters} quarter hours vs ${halfHours} half hours`);
  const evening = await page.locator('section.dayparts tbody tr', { hasText: 'Evening' }).innerText();
  assert.match(evening, /Evening \(18–24 h\)\s+\d+\s+(18|19|20|21|22|23):(00|15|30|45)/);
  // The CSV is the intervals shown.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.csv')]);
  const csv = parseCsv(fs.readFileSync(await download.path(), 'utf8'));
  assert.equal(csv.length - 1, quarters);
  assert.deepEqual(problems, []);
  await context.close();
});

test('the scripts page shows the intervals of /v1/analyses/scripts, best and worst named', async () => {
  const context = await signedInContext();
  const { page, problems } = await watchedPage(context);
  await page.goto(`${BASE}/scripts`);
  const from = await page.inputValue('input[name=from]');
  const to = await page.inputValue('input[name=to]');
  const api_ = await api(`/v1/analyses/scripts?from=${from}&to=${to}`);
  const template = api_.groups.find((g) => g.kind === 'template' && g.csat_low !== null);
  assert.ok(template, 'a template with a CSAT interval');
  const row = page
    .locator('section.scripts tbody tr')
    .filter({ has: page.locator('th', { hasText: new RegExp(`^${template.key}(\\s|$)`) }) });
  const cells = await row.locator('td').allInnerTexts();
  assert.equal(cells[0], template.csat_mean.toFixed(2));
  assert.equal(cells[2], `[${template.csat_low.toFixed(2)}, ${template.csat_high.toFixed(2)}]`);
  assert.equal(await row.locator('svg.ib').count(), 2, 'CSAT and resolution interval bars');
  if (api_.best.template) {
    assert.match(await page.locator('section.scripts p.extremes').last().innerText(), new RegExp(`Best\\s+${api_.best.template}`));
  }
  assert.deepEqual(problems, []);
  await context.close();
});
