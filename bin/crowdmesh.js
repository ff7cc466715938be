#!/usr/bin/env node
// The `crowdmesh` command. The project runs on Node >= 22.18 (libp2p 3, TypeScript type stripping);
// when an older Node starts this file (a machine's system Node outside npm scripts), it re-runs the
// CLI under the Node that the `node` devDependency installed in node_modules.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const cli = join(root, 'scripts', 'cli.ts')
const [major, minor] = process.versions.node.split('.').map(Number)
// Type stripping is on by default from Node 22.18.
if (major > 22 || (major === 22 && minor >= 18)) {
  await import(cli)
} else {
  const local = join(root, 'node_modules', 'node', 'bin', 'node')
  if (!existsSync(local)) {
    process.stderr.write(
      `crowdmesh needs Node >= 22.18 (this is ${process.version}); run "npm ci" to install it locally\n`,
    )
    process.exit(1)
  }
  const child = spawnSync(local, [cli, ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(child.status ?? 1)
}
