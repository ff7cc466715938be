import { buildWebApp } from '../../signaling/web-app.ts'

/** Vitest global setup of the integration tests: the browser tests load the freshly built web app. */
export default async function setup(): Promise<void> {
  await buildWebApp()
}
