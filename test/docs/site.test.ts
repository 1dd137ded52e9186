/**
 * The typedoc site (SPEC §10), opened in a real browser: the API reference and the guides must render
 * and be reachable by following links from the index page, not only exist as files.
 *
 * Needs Debian's `chromium` at /usr/bin/chromium (`.ci/run` installs it), driven by playwright-core;
 * without it the suite is skipped, never failed. The site is built with `npx typedoc` unless
 * docs/api/index.html is newer than every input (so `npm test`, which runs `npm run docs` first,
 * does not build it twice; `npx vitest run test/docs` on its own still tests a fresh site).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SITE = path.join(ROOT, 'docs', 'api');
const INDEX = path.join(SITE, 'index.html');
const SCREENSHOTS = path.join(ROOT, 'test', '.tmp', 'docs-site');
const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const BUILD_TIMEOUT_MS = 240_000;

if (!HAVE_CHROMIUM) {
  console.warn(`[test/docs] skipped: ${CHROMIUM} not found (install Debian's chromium: apt-get install -y chromium)`);
}

/** Newest modification time of the files typedoc reads. */
function newestInput(): number {
  let newest = 0;
  const visit = (entry: string): void => {
    const info = statSync(entry);
    if (info.isDirectory()) {
      for (const name of readdirSync(entry)) visit(path.join(entry, name));
    } else newest = Math.max(newest, info.mtimeMs);
  };
  visit(path.join(ROOT, 'src'));
  for (const name of ['README.md', 'SECURITY.md', 'typedoc.json', 'tsconfig.json', 'tsconfig.build.json', 'package.json'])
    visit(path.join(ROOT, name));
  for (const name of readdirSync(path.join(ROOT, 'docs'))) if (name.endsWith('.md')) visit(path.join(ROOT, 'docs', name));
  return newest;
}

/** Builds the site unless it is up to date; typedoc fails on any warning (treatWarningsAsErrors). */
async function buildSite(): Promise<void> {
  if (existsSync(INDEX) && statSync(INDEX).mtimeMs >= newestInput()) return;
  await run('npx', ['typedoc'], { cwd: ROOT, timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 * 2 ** 20 });
}

/**
 * Finds the link whose href ends with `hrefSuffix` and whose text matches `text`, opens the closed
 * sidebar sections it sits in the way a reader would (clicking their summaries), clicks it, and
 * waits for the page it leads to.
 */
async function follow(page: Page, hrefSuffix: string, text: RegExp): Promise<void> {
  const link = page.locator(`a[href$="${hrefSuffix}"]`).filter({ hasText: text }).first();
  // The sidebar is rendered by the site's own script (assets/navigation.js): wait for it to run.
  await expect.poll(() => link.count(), { timeout: 15_000, message: `no link to …${hrefSuffix} on ${page.url()}` }).toBe(1);
  for (let depth = 0; depth < 5 && !(await link.isVisible()); depth++) {
    await page.locator('details:not([open])', { has: link }).last().locator(':scope > summary').click();
  }
  await Promise.all([page.waitForURL((url) => url.pathname.endsWith(hrefSuffix), { waitUntil: 'load' }), link.click()]);
}

async function screenshot(page: Page, name: string): Promise<void> {
  const file = path.join(SCREENSHOTS, name);
  await page.screenshot({ path: file, fullPage: false });
  expect(statSync(file).size).toBeGreaterThan(1000);
}

describe.skipIf(!HAVE_CHROMIUM)('typedoc site in headless Chromium', () => {
  let context: BrowserContext;
  let userDataDir: string;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    await buildSite();
    expect(existsSync(INDEX), 'docs/api/index.html was not built').toBe(true);
    mkdirSync(SCREENSHOTS, { recursive: true });
    userDataDir = mkdtempSync(path.join(tmpdir(), 'armdb-docs-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
      timeout: 60_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
  }, BUILD_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    await context?.close();
    if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('renders the index page with the README', async () => {
    await page.goto(pathToFileURL(INDEX).href, { waitUntil: 'load' });
    await expect.poll(() => page.title()).toContain('armdb');
    await expect.poll(() => page.locator('h1').first().textContent()).toContain('armdb');
    await expect.poll(() => page.getByRole('heading', { name: 'Quick start' }).count()).toBeGreaterThan(0);
    // The site's title and the README's own heading are two different headings, not "armdb" twice.
    const headings = await page.locator('h1').allTextContents();
    expect(new Set(headings.map((heading) => heading.trim())).size).toBe(headings.length);
    await screenshot(page, 'index.png');
    expect(pageErrors).toEqual([]);
  });

  it('reaches the VarTree class page from the index', async () => {
    await page.goto(pathToFileURL(INDEX).href, { waitUntil: 'load' });
    // Every subpath entry is a module of the site (armdb, armdb/pkcs11, armdb/replication): the class
    // pages carry the module's name, classes/armdb.VarTree.html. The module's own page lists its
    // classes in its content, so the link is followed from there, not from a collapsed sidebar.
    await follow(page, '/modules/armdb.html', /^\s*armdb\s*$/);
    await follow(page, '/armdb.VarTree.html', /^\s*VarTree\s*$/);
    const heading = page.locator('h1').first();
    await expect.poll(() => heading.textContent()).toMatch(/VarTree/);
    // The class's doc comment and an inherited member made it onto the page.
    await expect.poll(() => page.locator('.tsd-comment').first().textContent()).toContain('ordered map');
    await expect.poll(() => page.locator('#range').count()).toBe(1);
    // util.inspect's hook is internal: no "[custom]" member on the page.
    expect(await page.getByText('[custom]').count()).toBe(0);
    await screenshot(page, 'var-tree.png');
    expect(pageErrors).toEqual([]);
  });

  it('reaches the security model guide from the index', async () => {
    await page.goto(pathToFileURL(INDEX).href, { waitUntil: 'load' });
    // The README's own link to docs/security-model.md, rewritten by typedoc to the guide page.
    await follow(page, '/docs_security-model.html', /security-model/i);
    await expect.poll(() => page.locator('h1').first().textContent()).toMatch(/Security model/);
    await expect.poll(() => page.title()).toMatch(/security/i);
    await screenshot(page, 'security-model.png');
    expect(pageErrors).toEqual([]);
  });

  it('no guide turns a file name such as "durability.md" into a link to a web host', async () => {
    const guides = readdirSync(path.join(SITE, 'documents')).filter((name) => name.endsWith('.html'));
    expect(guides.length).toBeGreaterThan(3);
    const strays: string[] = [];
    for (const guide of guides) {
      await page.goto(pathToFileURL(path.join(SITE, 'documents', guide)).href, { waitUntil: 'load' });
      const hrefs = await page.locator('a[href]').evaluateAll((anchors) => anchors.map((anchor) => anchor.getAttribute('href') ?? ''));
      for (const href of hrefs) if (/^https?:\/\/[\w.-]+\.md\b/.test(href)) strays.push(`${guide}: ${href}`);
    }
    expect(strays).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
