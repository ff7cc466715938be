import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const web = (file: string) => fileURLToPath(new URL(`./web/${file}`, import.meta.url))

// The participant web app: built into dist/web and served by the signaling server under /app/, its
// index.html at every join link, console.html at the operator's console link. bench.html is the page
// the WebGL tests and benchmarks drive.
export default defineConfig({
  root: web(''),
  base: '/app/',
  publicDir: false,
  resolve: {
    // simple-peer's streams (streamx) take Node's EventEmitter through events-universal; in the
    // browser its plain-JavaScript twin (bare-events) stands in, as it does on React Native.
    alias: { 'events-universal': 'bare-events' },
  },
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('./dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // Source maps make a participant's bug report readable; they are fetched only by devtools.
    sourcemap: true,
    chunkSizeWarningLimit: 2048,
    rollupOptions: {
      input: {
        index: web('index.html'),
        record: web('record.html'),
        console: web('console.html'),
        bench: web('bench.html'),
      },
      // Error classes take their `name` from the class (protocol/errors.ts); minified names would
      // reach the coordinator and the tests as 's'.
      output: { keepNames: true },
    },
  },
})
