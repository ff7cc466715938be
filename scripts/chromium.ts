import { type Browser, chromium } from 'playwright-core'

/**
 * Flags for Debian's headless Chromium on a machine without a GPU: WebGL2 comes from SwiftShader
 * (ANGLE's CPU renderer), and nothing reaches out to Google's services. A machine with a real GPU
 * passes its own flags instead (e.g. `--use-angle=vulkan --enable-gpu`), see `launchChromium`.
 */
export const headlessChromiumFlags: readonly string[] = [
  '--headless=new',
  '--no-sandbox',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Pages in background tabs must keep computing and timing like a foreground one.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
]

/** Flags that give a page a fake camera and microphone without asking (the recordings issue). */
export const fakeMediaFlags: readonly string[] = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
]

/** Options of a Chromium launch. */
export interface ChromiumInit {
  /** The browser binary (default $CROWDMESH_CHROMIUM, else /usr/bin/chromium). */
  executablePath?: string
  /** Replaces `headlessChromiumFlags` (a machine with a real GPU passes its own). */
  flags?: readonly string[]
  /** Added to the flags. */
  extraFlags?: readonly string[]
}

/** Launches headless Chromium through playwright-core (no browser download: Debian's package). */
export async function launchChromium(init: ChromiumInit = {}): Promise<Browser> {
  const executablePath = init.executablePath ?? process.env.CROWDMESH_CHROMIUM ?? '/usr/bin/chromium'
  try {
    return await chromium.launch({
      executablePath,
      headless: true,
      args: [...(init.flags ?? headlessChromiumFlags), ...(init.extraFlags ?? [])],
    })
  } catch (error) {
    throw new Error(
      `cannot start Chromium at ${executablePath} (install Debian's chromium package, or set CROWDMESH_CHROMIUM): ${(error as Error).message}`,
      { cause: error },
    )
  }
}
