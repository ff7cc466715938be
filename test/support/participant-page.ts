import type { Page } from 'playwright-core'
import type { AppState } from '../../peer/browser/app-state.ts'

/** The participant web app's state, as the page exposes it (`crowdmesh.state`). */
export async function appState(page: Page): Promise<AppState> {
  return page.evaluate(() => (globalThis as unknown as { crowdmesh: { state: AppState } }).crowdmesh.state)
}

/** Polls the page's state until `ok` holds (or fails with the last state seen). */
export async function untilState(
  page: Page,
  ok: (s: AppState) => boolean,
  what: string,
  ms = 60_000,
): Promise<AppState> {
  const deadline = performance.now() + ms
  let last = await appState(page)
  while (!ok(last)) {
    if (performance.now() > deadline)
      throw new Error(`timed out waiting for ${what}; state: ${JSON.stringify(last)}`)
    await new Promise((r) => setTimeout(r, 200))
    last = await appState(page)
  }
  return last
}
