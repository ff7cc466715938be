import { join } from 'node:path'
import type { Page } from 'playwright-core'
import type { ImageFilterTestReport, ImageFilterTestRequest } from '../../peer/jobs/image-filter/test-page.ts'
import { openBundledPage } from '../../scripts/bundled-page.ts'
import { repoRoot } from './fixtures.ts'

/** The image-filter kind's test page in headless Chromium (see `openBundledPage`). */
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

/** Bundles test-page.html, launches Chromium and opens the page; images are served from `imagesDir`. */
export async function openImageFilterPage(imagesDir: string): Promise<ImageFilterPage> {
  const opened = await openBundledPage({
    pageDir: join(repoRoot, 'peer', 'jobs', 'image-filter'),
    html: 'test-page.html',
    origin: 'http://image-filter.test',
    dataDir: imagesDir,
    ready: (page) =>
      page.waitForFunction(() => window.imageFilterTest !== undefined, undefined, { timeout: 30_000 }),
  })
  return {
    page: opened.page,
    pageErrors: opened.pageErrors,
    imageUrl: (name) => opened.dataUrl(name),
    run: (request) => opened.page.evaluate((r) => window.imageFilterTest!.run(r), request),
    close: () => opened.close(),
  }
}
