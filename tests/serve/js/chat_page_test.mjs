// End-to-end test of the chat page (GET /, src/serve/chat_page.html) in headless Chromium.
//
//   node chat_page_test.mjs [FRUGAL_BIN [MODEL_DIR]]      (or env FRUGAL_BIN, FRUGAL_MODEL)
//
// Starts `frugal serve`, drives Debian's /usr/bin/chromium with playwright-core (no browser
// download), sends a message and waits for the streamed answer, stops a long generation with the
// Stop button, checks the thinking toggle, an error shown from the server's error object, and
// "New chat". On failure a screenshot is written to the test's temp folder and its path printed.
// Exit status 0 when every step passed, 1 otherwise.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Server, resolve_paths } from './server.mjs';

const kChromium = '/usr/bin/chromium';
// The flags this machine's closed network needs (no background connections to Google's hosts).
const kChromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                       '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const kStepTimeoutMs = 60_000;

const assistants = (page) => page.locator('#messages .assistant');

// Waits until the page is idle again (body[data-state="idle"]) after a send.
async function wait_idle(page, timeout = kStepTimeoutMs) {
  await page.waitForFunction(() => document.body.dataset.state === 'idle', null, { timeout });
}

// Types `text` with the given settings, clicks Send and returns the new assistant bubble.
async function send(page, text, { max_tokens = 24, temperature = 0, thinking = false } = {}) {
  const before = await assistants(page).count();
  await page.fill('#max-tokens', String(max_tokens));
  await page.fill('#temperature', String(temperature));
  await page.setChecked('#thinking', thinking);
  await page.fill('#input', text);
  await page.click('#send');
  await page.waitForFunction((n) => document.querySelectorAll('#messages .assistant').length === n + 1,
                             before, { timeout: kStepTimeoutMs });
  return assistants(page).nth(before);
}

// Polls GET /metrics until the sample `name` satisfies `ok`; returns its value, or null on timeout.
async function wait_metric(server, name, ok, timeout_ms) {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const text = await (await fetch(`${server.base_url}/metrics`)).text();
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (m && ok(Number(m[1]))) return Number(m[1]);
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function expect(cond, msg) { if (!cond) throw new Error(msg); }

async function run_steps(page, server) {
  const page_errors = [];
  page.on('pageerror', (e) => page_errors.push(e.message));

  await page.goto(`${server.base_url}/`);
  for (const id of ['#input', '#send', '#stop', '#messages', '#new-chat', '#thinking', '#temperature', '#max-tokens']) {
    expect(await page.locator(id).count() === 1, `the page has no ${id}`);
  }
  expect(await page.isDisabled('#stop'), '#stop should be disabled while idle');

  // 1. A message streams an answer into the assistant bubble.
  let bubble = await send(page, 'Good morrow, sweet lady.', { max_tokens: 24 });
  await page.waitForFunction(() => {
    const b = document.querySelectorAll('#messages .assistant');
    return b[b.length - 1].querySelector('.content').textContent.length > 0;
  }, null, { timeout: kStepTimeoutMs });
  await wait_idle(page);
  const user_text = await page.locator('#messages .user').first().textContent();
  expect(user_text === 'Good morrow, sweet lady.', `user bubble text: ${JSON.stringify(user_text)}`);
  const answer = await bubble.locator('.content').textContent();
  expect(answer.length > 0, 'the assistant bubble has no text');
  expect(await bubble.locator('.error').count() === 0, `error shown: ${await bubble.locator('.error').allTextContents()}`);
  const meta = await bubble.locator('.meta').textContent();
  expect(/finish: (length|stop)/.test(meta), `first answer meta: ${JSON.stringify(meta)}`);
  console.log(`PASS send_and_stream: ${JSON.stringify(answer.slice(0, 60))}`);

  // 2. Stop aborts a long generation. `ignore_eos` (a server extension) is added on the wire so
  //    the model cannot finish by itself before we click.
  await page.route('**/v1/chat/completions', (route) => {
    const body = JSON.parse(route.request().postData());
    route.continue({ postData: JSON.stringify({ ...body, ignore_eos: true }) });
  });
  bubble = await send(page, 'Tell me a long tale of kings.', { max_tokens: 3800 });
  // The server streams hundreds of tokens a second, faster than a round trip per poll can follow,
  // so the click happens inside the page as soon as the answer has some text (a MutationObserver
  // fires right after each DOM update).
  const at_click = await page.evaluate(() => new Promise((resolve) => {
    const b = document.querySelectorAll('#messages .assistant');
    const content = b[b.length - 1].querySelector('.content');
    const stop = document.querySelector('#stop');
    const try_click = () => {
      const state = document.body.dataset.state;
      if (content.textContent.length <= 20 && state === 'generating') return false;
      const enabled = !stop.disabled;
      if (state === 'generating' && enabled) stop.click();
      resolve({ state, enabled, len: content.textContent.length });
      return true;
    };
    if (try_click()) return;
    const obs = new MutationObserver(() => { if (try_click()) obs.disconnect(); });
    obs.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  }));
  expect(at_click.state === 'generating',
         `generation finished (${at_click.len} chars) before Stop could be clicked`);
  expect(at_click.enabled, '#stop should be enabled while generating');
  await wait_idle(page, 5_000);
  const stopped_len = (await bubble.locator('.content').textContent()).length;
  await page.waitForTimeout(1_000);
  expect((await bubble.locator('.content').textContent()).length === stopped_len, 'text kept growing after Stop');
  expect(/finish: stopped/.test(await bubble.locator('.meta').textContent()), 'stopped answer not marked as stopped');
  await page.unroute('**/v1/chat/completions');
  // The server must cancel the sequence of the aborted stream (frugal_sequences_cancelled_total
  // in /metrics) well before its 3800 tokens could have finished, then answer the next message
  // (the history now holds the partial answer).
  const cancelled = await wait_metric(server, 'frugal_sequences_cancelled_total', (v) => v >= 1, 5_000);
  expect(cancelled !== null, 'the server did not count the stopped stream as cancelled within 5 s ' +
         '(frugal_sequences_cancelled_total stayed 0)');
  const idle = await wait_metric(server, 'frugal_active_sequences', (v) => v === 0, 5_000);
  expect(idle !== null, 'frugal_active_sequences did not return to 0 after Stop');
  bubble = await send(page, 'Farewell.', { max_tokens: 8 });
  await wait_idle(page);
  expect((await bubble.locator('.content').textContent()).length > 0, 'no answer after a stopped generation');
  console.log(`PASS stop_button (stopped after ${stopped_len} chars; next message answered)`);

  // 3. Thinking mode: the reasoning arrives folded in a <details class="reasoning">.
  bubble = await send(page, 'Who comes there?', { max_tokens: 20, thinking: true });
  await wait_idle(page);
  const reasoning = await bubble.locator('.reasoning .reasoning-text').textContent();
  expect(reasoning.length > 0, 'thinking on: no reasoning text shown');
  expect(await bubble.locator('details.reasoning').evaluate((d) => !d.open), 'reasoning should be folded');
  console.log(`PASS thinking_toggle: ${JSON.stringify(reasoning.slice(0, 60))}`);

  // 4. A request the server rejects shows the message of its error object.
  bubble = await send(page, 'Too hot.', { temperature: 5 });
  await wait_idle(page);
  const err = await bubble.locator('.error').textContent().catch(() => '');
  expect(err.length > 0 && !/^HTTP \d+$/.test(err), `error bubble should show the server's message, got ${JSON.stringify(err)}`);
  console.log(`PASS error_shown: ${JSON.stringify(err)}`);

  // 5. New chat clears the conversation.
  await page.click('#new-chat');
  expect(await page.locator('#messages > *').count() === 0, 'New chat did not clear the messages');
  console.log('PASS new_chat');

  expect(page_errors.length === 0, `uncaught errors in the page: ${page_errors.join('; ')}`);
}

// Processes whose command line names `dir` (Chromium's, given --user-data-dir): SIGTERM, wait up
// to 5 s for them to go, then SIGKILL what is left.
function pids_using(dir) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(dir)) out.push(Number(name));
    } catch { /* gone already */ }
  }
  return out;
}

async function stop_processes_using(dir) {
  const signal = (pids, sig) => pids.forEach((p) => { try { process.kill(p, sig); } catch { /* gone */ } });
  signal(pids_using(dir), 'SIGTERM');
  for (let i = 0; i < 50 && pids_using(dir).length > 0; ++i) await new Promise((r) => setTimeout(r, 100));
  signal(pids_using(dir), 'SIGKILL');
}

async function main() {
  if (!existsSync(kChromium)) {
    console.error(`FAIL: ${kChromium} is missing. Run scripts/setup.sh (it installs Debian's chromium).`);
    process.exit(1);
  }
  const paths = resolve_paths();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'frugal-page-test-'));
  const profile = path.join(tmp, 'profile');
  const server = new Server({ ...paths, parallel: 2 });
  let context = null, page = null, failed = null;
  try {
    await server.start();
    console.log(`server ready at ${server.base_url}`);
    // A persistent context is how playwright takes a user-data-dir of our choosing.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: kChromium, headless: true, args: kChromiumArgs, timeout: kStepTimeoutMs });
    page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(kStepTimeoutMs);
    await run_steps(page, server);
    const e = await server.stop();
    if (e.code !== 0) throw new Error(`SIGTERM: server should exit 0, got ${JSON.stringify(e)}`);
  } catch (e) {
    failed = e;
    if (page) {
      const shot = path.join(tmp, 'failure.png');
      await page.screenshot({ path: shot, fullPage: true }).then(
        () => console.error(`screenshot: ${shot}`), () => {});
    }
  } finally {
    if (context) await context.close().catch(() => {});
    server.kill();
    // Chromium's helpers (the crashpad handler, zygotes) may outlive the browser for a moment and
    // still write into the profile: stop them, then remove with retries (ENOTEMPTY races).
    await stop_processes_using(profile);
    rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    if (!failed) rmSync(tmp, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
  if (failed) {
    console.error(`FAIL: ${failed.message}\n${server.tail()}`);
    process.exit(1);
  }
  console.log('\nall page checks passed');
}

await main();
