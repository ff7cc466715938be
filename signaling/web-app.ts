import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** Where the participant web app is built (`npm run build:web`), served under /app/. */
export const webAppDir = fileURLToPath(new URL('../dist/web', import.meta.url))

/** Whether the web app has been built. */
export function webAppBuilt(dir = webAppDir): boolean {
  return existsSync(`${dir}/index.html`)
}

/** Builds the web app with Vite (a few seconds); `vite.config.ts` says what goes in. */
export async function buildWebApp(): Promise<void> {
  const { build } = await import('vite')
  await build({ configFile: fileURLToPath(new URL('../vite.config.ts', import.meta.url)) })
}
