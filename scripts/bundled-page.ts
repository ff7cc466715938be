import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { extname, join, normalize, relative, resolve } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { build } from 'vite'
import { launchChromium } from './chromium.ts'

/*
 * A kind's test page in headless Chromium. The page is bundled here with Vite's own build API (its
 * own config, into a temporary folder), so the web app's vite.config.ts stays as it is; Playwright
 * answers the page's requests from that folder and from a data folder under a made-up origin, so no
 * server or port is involved.
 */

/** Options of a bundled page. */
export interface BundledPageInit {
  /** The folder of the page's HTML and script. */
  pageDir: string
  /** The HTML file in it. */
  html: string
  /** The made-up origin it is served from. */
  origin: string
  /** Files the page may fetch under `/data/`: this folder's, by path relative to it. */
  dataDir: string
  /** Resolves once the page's script has set up what the test calls (a `window` global). */
  ready: (page: Page) => Promise<unknown>
  /** Chromium's flags, replacing the SwiftShader defaults (a machine with a GPU). */
  chromiumFlags?: readonly string[]
}

/** A bundled page, open. */
export interface BundledPage {
  readonly page: Page
  /** Uncaught errors and console errors of the page so far. */
  readonly pageErrors: readonly string[]
  /** The http: URL under which the page fetches `dataDir`'s file at `path` (relative). */
  dataUrl(path: string): string
  /** Closes the browser and removes the bundle. Safe to call twice. */
  close(): Promise<void>
}

const types: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.map': 'application/json',
  '.png': 'image/png',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
}

/** Bundles the page, launches Chromium and opens it. */
export async function openBundledPage(init: BundledPageInit): Promise<BundledPage> {
  const outDir = await mkdtemp(join(tmpdir(), 'crowdmesh-page-'))
  let browser: Browser | undefined
  const close = async () => {
    await browser?.close()
    browser = undefined
    await rm(outDir, { recursive: true, force: true })
  }
  try {
    await build({
      configFile: false,
      root: init.pageDir,
      base: '/',
      publicDir: false,
      logLevel: 'warn',
      build: {
        outDir,
        emptyOutDir: true,
        target: 'es2022',
        chunkSizeWarningLimit: 4096,
        rollupOptions: {
          input: join(init.pageDir, init.html),
          // Error names cross to Node and the tests compare them: minified class names would not do.
          output: { keepNames: true },
        },
      },
    })
    browser = await launchChromium(init.chromiumFlags !== undefined ? { flags: init.chromiumFlags } : {})
    const page = await browser.newPage()
    const dataRoot = resolve(init.dataDir)
    await page.route(`${init.origin}/**`, async (route) => {
      const path = decodeURIComponent(new URL(route.request().url()).pathname)
      // Nothing serves a favicon; its 404 would read as a page error.
      if (path === '/favicon.ico') return route.fulfill({ status: 204 })
      const file = path.startsWith('/data/')
        ? resolve(dataRoot, path.slice('/data/'.length))
        : join(outDir, normalize(path).replace(/^(\.\.[/\\])+/, ''))
      if (path.startsWith('/data/') && relative(dataRoot, file).startsWith('..'))
        return route.fulfill({ status: 404 })
      try {
        const body = await readFile(file)
        await route.fulfill({
          status: 200,
          body,
          contentType: types[extname(file)] ?? 'application/octet-stream',
        })
      } catch {
        await route.fulfill({ status: 404 })
      }
    })
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(`${error.name}: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text())
    })
    await page.goto(`${init.origin}/${init.html}`)
    await init.ready(page)
    return {
      page,
      pageErrors,
      dataUrl: (path) => `${init.origin}/data/${path.split('/').map(encodeURIComponent).join('/')}`,
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
