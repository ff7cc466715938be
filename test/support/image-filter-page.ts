import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, extname, join, normalize } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { build } from 'vite'
import type { ImageFilterTestReport, ImageFilterTestRequest } from '../../peer/jobs/image-filter/test-page.ts'
import { launchChromium } from '../../scripts/chromium.ts'
import { repoRoot } from './fixtures.ts'

/*
 * The image-filter kind's test page in headless Chromium. The page is bundled here with Vite's own
 * build API (its own config, into a temporary folder), so the web app's vite.config.ts stays as it
 * is; Playwright answers the page's requests from that folder and from the image folder under a
 * made-up origin, so no server or port is involved.
 */

/** The origin the page is served from. */
export const pageOrigin = 'http://image-filter.test'

/** The image-filter test page, open, with typed calls into `window.imageFilterTest`. */
export interface ImageFilterPage {
  readonly page: Page
  /** Uncaught errors and console errors of the page so far. */
  readonly pageErrors: readonly string[]
  /** The http: URL under which the page fetches `imagesDir`'s file `name`. */
  imageUrl(name: string): string
  run(request: ImageFilterTestRequest): Promise<ImageFilterTestReport>
  /** Closes the browser and removes the bundle. Safe to call twice. */
  close(): Promise<void>
}

const pageDir = join(repoRoot, 'peer', 'jobs', 'image-filter')
const types: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.map': 'application/json',
  '.png': 'image/png',
}

/** Bundles test-page.html, launches Chromium and opens the page; images are served from `imagesDir`. */
export async function openImageFilterPage(imagesDir: string): Promise<ImageFilterPage> {
  const outDir = await mkdtemp(join(tmpdir(), 'crowdmesh-image-filter-'))
  let browser: Browser | undefined
  const close = async () => {
    await browser?.close()
    browser = undefined
    await rm(outDir, { recursive: true, force: true })
  }
  try {
    await build({
      configFile: false,
      root: pageDir,
      base: '/',
      publicDir: false,
      logLevel: 'warn',
      build: {
        outDir,
        emptyOutDir: true,
        target: 'es2022',
        rollupOptions: {
          input: join(pageDir, 'test-page.html'),
          // Error names cross to Node and the tests compare them: minified class names would not do.
          output: { keepNames: true },
        },
      },
    })
    browser = await launchChromium()
    const page = await browser.newPage()
    await page.route(`${pageOrigin}/**`, async (route) => {
      const path = decodeURIComponent(new URL(route.request().url()).pathname)
      // Nothing serves a favicon; its 404 would read as a page error.
      if (path === '/favicon.ico') return route.fulfill({ status: 204 })
      const file = path.startsWith('/images/')
        ? join(imagesDir, basename(path))
        : join(outDir, normalize(path).replace(/^(\.\.[/\\])+/, ''))
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
    await page.goto(`${pageOrigin}/test-page.html`)
    await page.waitForFunction(() => window.imageFilterTest !== undefined, undefined, { timeout: 30_000 })
    return {
      page,
      pageErrors,
      imageUrl: (name) => `${pageOrigin}/images/${name}`,
      run: (request) => page.evaluate((r) => window.imageFilterTest!.run(r), request),
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
