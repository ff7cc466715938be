import { flaggedColour, type GlslTarget } from './shaders/colour-block.ts'
import { checkBlock, colourBlock } from './cpu-worker.ts'
import { defaultCanvas, openContext, rendererName, setNearest } from '../../browser/webgl-context.ts'
import { type ColourProgram, linkColourProgram } from './colour-program.ts'
import type { FrameImage } from '../../participant/frame-image.ts'
import type { FrameSource } from '../../participant/frame-source.ts'
import type { BlockWorker } from './block.ts'
import { focalLength, projectionMatrix } from './camera.ts'
import { AbortError, GpuContextLostError, GpuUnavailableError } from '../../protocol/errors.ts'
import { type Block, type BlockResult, blockResult, type VertexJob } from './block.ts'
import { vertexCount, voxelEdge, voxelSize } from './target-space.ts'

/** Which WebGL a worker computes with. */
export type WebglBackend = GlslTarget

/** Options of a WebGL worker; each defaults as documented. */
export interface WebglWorkerInit {
  /** Where the blocks' frames come from (fetched, decoded and cached by URL). */
  frames: FrameSource
  /** Use only this WebGL (default: WebGL 2, else WebGL 1). */
  backend?: WebglBackend
  /** The canvas whose context computes (default: a 1×1 OffscreenCanvas, else a detached `<canvas>`). */
  canvas?: HTMLCanvasElement | OffscreenCanvas
  /** Aim for draws of about this long, ms (default 8), so the page keeps its frame rate while computing. */
  targetDrawMs?: number
  /** Vertices in each draw until a throughput is measured (default 8192). */
  firstDrawVertices?: number
  /** Frame textures kept on the GPU, least recently used evicted (default 4). */
  maxTextures?: number
  /** Weight of a new draw's measurement in the smoothed throughput (default 0.3). */
  smoothing?: number
}

/** A participant's WebGL worker: a `BlockWorker` whose results equal `colourBlock`'s within ±1 per channel. */
export interface WebglWorker extends BlockWorker {
  readonly backend: WebglBackend
  /** The GPU as the browser names it (unmasked where the browser allows). */
  readonly renderer: string
  /** Vertex views (data threads) per second while drawing, exponentially smoothed; 0 before the first draw. */
  readonly vertexViewsPerSec: number
  /** Vertices coloured so far. */
  readonly verticesColoured: number
  /** Of those, the vertices the GPU left to the CPU because a quotient lay near its rounding boundary. */
  readonly flaggedVertices: number
  /** Whether the context is lost now (blocks reject until the browser restores it). */
  readonly contextLost: boolean
  /** Frees every GL object and listener; later blocks reject. Safe to call twice. */
  dispose(): void
}

/** The GL objects of one context generation (all of them die with a lost context). */
interface GlObjects {
  programs: Map<number, ColourProgram>
  /** Frame textures by URL, least recently used first. */
  textures: Map<string, WebGLTexture>
  framebuffer: WebGLFramebuffer
  targetTexture: WebGLTexture
  /** WebGL 1: vertex indices 0…maxDraw−1 as floats. */
  indexBuffer: WebGLBuffer | undefined
  /** WebGL 2: two pixel-pack buffers, so one draw reads back while the next renders. */
  packBuffers: WebGLBuffer[]
}

/** Framebuffer width: vertex i of a draw goes to pixel (i mod W, i div W). */
const targetWidth = 1024
/** Framebuffer rows: at most 256 Ki vertices a draw. */
const targetRows = 256

/**
 * Creates the WebGL worker: WebGL 2 where the browser has it, else WebGL 1. Each block uploads its
 * frame as a texture (cached by URL) and colours its vertices in draws sized to take about
 * `targetDrawMs`, reading each back without stalling the page (WebGL 2: into a pixel-pack buffer
 * behind a fence). Vertices the GPU flags as too close to a rounding boundary are recomputed on the
 * CPU. Throws `GpuUnavailableError` when no usable WebGL is there.
 */
export function createWebglWorker(init: WebglWorkerInit): WebglWorker {
  const targetDrawMs = init.targetDrawMs ?? 8
  const firstDrawVertices = init.firstDrawVertices ?? 8192
  const maxTextures = init.maxTextures ?? 4
  const smoothing = init.smoothing ?? 0.3
  const ownCanvas = init.canvas === undefined
  const canvas = init.canvas ?? defaultCanvas()
  const { gl, backend } = openContext(canvas, init.backend)
  const gl2 = backend === 'webgl2' ? (gl as WebGL2RenderingContext) : undefined

  let objects: GlObjects | undefined = createObjects()
  let generation = 0
  let lost = false
  let disposed = false
  let restoreFailure: Error | undefined
  let rate = 0
  let verticesColoured = 0
  let flaggedVertices = 0
  // Blocks run one at a time: they share the framebuffer and the pack buffers.
  let queue: Promise<unknown> = Promise.resolve()
  const scratch = gl2 === undefined ? new Uint8Array(targetWidth * targetRows * 4) : undefined

  const onLost = (event: Event) => {
    // Without preventDefault the browser never restores the context.
    event.preventDefault()
    lost = true
    generation++
    objects = undefined
  }
  const onRestored = () => {
    try {
      objects = createObjects()
      lost = false
      restoreFailure = undefined
    } catch (error) {
      restoreFailure = error as Error
    }
  }
  canvas.addEventListener('webglcontextlost', onLost)
  canvas.addEventListener('webglcontextrestored', onRestored)

  function createObjects(): GlObjects {
    const framebuffer = gl.createFramebuffer()
    const targetTexture = gl.createTexture()
    gl.bindTexture(gl.TEXTURE_2D, targetTexture)
    gl.texImage2D(
      gl.TEXTURE_2D,
      0,
      gl2 === undefined ? gl.RGBA : gl2.RGBA8,
      targetWidth,
      targetRows,
      0,
      gl.RGBA,
      gl.UNSIGNED_BYTE,
      null,
    )
    setNearest(gl)
    gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer)
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, targetTexture, 0)
    const status = gl.checkFramebufferStatus(gl.FRAMEBUFFER)
    gl.bindFramebuffer(gl.FRAMEBUFFER, null)
    if (status !== gl.FRAMEBUFFER_COMPLETE && !gl.isContextLost()) {
      throw new GpuUnavailableError(
        `this browser cannot render into an 8-bit RGBA texture (framebuffer status ${status}), so it cannot lend its GPU`,
      )
    }
    let indexBuffer: WebGLBuffer | undefined
    const packBuffers: WebGLBuffer[] = []
    if (gl2 === undefined) {
      indexBuffer = gl.createBuffer()
      gl.bindBuffer(gl.ARRAY_BUFFER, indexBuffer)
      gl.bufferData(
        gl.ARRAY_BUFFER,
        Float32Array.from({ length: targetWidth * targetRows }, (_, i) => i),
        gl.STATIC_DRAW,
      )
      gl.bindBuffer(gl.ARRAY_BUFFER, null)
    } else {
      for (let i = 0; i < 2; i++) {
        const buffer = gl2.createBuffer()
        gl2.bindBuffer(gl2.PIXEL_PACK_BUFFER, buffer)
        gl2.bufferData(gl2.PIXEL_PACK_BUFFER, targetWidth * targetRows * 4, gl2.STREAM_READ)
        packBuffers.push(buffer)
      }
      gl2.bindBuffer(gl2.PIXEL_PACK_BUFFER, null)
    }
    for (const cap of [gl.BLEND, gl.DEPTH_TEST, gl.STENCIL_TEST, gl.SCISSOR_TEST, gl.DITHER, gl.CULL_FACE]) {
      gl.disable(cap)
    }
    gl.colorMask(true, true, true, true)
    return {
      programs: new Map(),
      textures: new Map(),
      framebuffer,
      targetTexture,
      indexBuffer,
      packBuffers,
    }
  }

  function deleteObjects(o: GlObjects): void {
    for (const p of o.programs.values()) gl.deleteProgram(p.program)
    for (const t of o.textures.values()) gl.deleteTexture(t)
    gl.deleteFramebuffer(o.framebuffer)
    gl.deleteTexture(o.targetTexture)
    if (o.indexBuffer !== undefined) gl.deleteBuffer(o.indexBuffer)
    for (const b of o.packBuffers) gl.deleteBuffer(b)
  }

  /** Throws when the block must stop: aborted, context lost (or lost and restored since `since`), disposed. */
  function check(since: number, signal: AbortSignal | undefined): GlObjects {
    if (signal?.aborted) throw new AbortError()
    if (disposed) throw new GpuContextLostError('the WebGL worker was disposed')
    if (restoreFailure !== undefined) {
      throw new GpuUnavailableError(
        `the WebGL context came back but cannot be set up again: ${restoreFailure.message}`,
      )
    }
    if (lost || since !== generation || objects === undefined || gl.isContextLost()) {
      throw new GpuContextLostError()
    }
    return objects
  }

  function programFor(o: GlObjects, maxAreaRadius: number): ColourProgram {
    let p = o.programs.get(maxAreaRadius)
    if (p === undefined) {
      p = linkColourProgram(gl, backend, maxAreaRadius)
      o.programs.set(maxAreaRadius, p)
    }
    return p
  }

  function textureFor(o: GlObjects, url: string, image: FrameImage): WebGLTexture {
    const hit = o.textures.get(url)
    if (hit !== undefined) {
      o.textures.delete(url)
      o.textures.set(url, hit)
      return hit
    }
    const texture = gl.createTexture()
    gl.bindTexture(gl.TEXTURE_2D, texture)
    // The bytes go in as they are: no flip, no premultiplication, no colour-space conversion.
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1)
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false)
    gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false)
    gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE)
    gl.texImage2D(
      gl.TEXTURE_2D,
      0,
      gl2 === undefined ? gl.RGBA : gl2.RGBA8,
      image.width,
      image.height,
      0,
      gl.RGBA,
      gl.UNSIGNED_BYTE,
      image.rgba,
    )
    setNearest(gl)
    o.textures.set(url, texture)
    while (o.textures.size > maxTextures) {
      const [oldest, old] = o.textures.entries().next().value!
      o.textures.delete(oldest)
      gl.deleteTexture(old)
    }
    return texture
  }

  function record(vertices: number, ms: number): void {
    const sample = (vertices * 1000) / Math.max(ms, 0.05)
    rate = rate === 0 ? sample : rate + smoothing * (sample - rate)
  }

  function drawSize(remaining: number): number {
    const wanted = rate === 0 ? firstDrawVertices : Math.round((rate * targetDrawMs) / 1000)
    return Math.min(remaining, Math.max(targetWidth, Math.min(wanted, targetWidth * targetRows)))
  }

  async function runBlock(
    job: VertexJob,
    block: Block,
    signal: AbortSignal | undefined,
  ): Promise<BlockResult> {
    check(generation, signal)
    const image = await init.frames.get(block.imageUrl, signal)
    const since = generation
    const o = check(since, signal)
    const setup = blockSetup(job, block, image)
    const maxTexture = gl.getParameter(gl.MAX_TEXTURE_SIZE) as number
    // Past these limits the GPU cannot be exact (ids beyond 2^24 in float32) or cannot hold the frame.
    if (setup.vertexIds > 2 ** 24 || image.width > maxTexture || image.height > maxTexture) {
      return colourBlock(job, block, image)
    }
    const colours = new Uint8Array(block.vertexCount * 4)
    const compiled = !o.programs.has(job.maxAreaRadius)
    const program = programFor(o, job.maxAreaRadius)
    const texture = textureFor(o, block.imageUrl, image)
    gl.bindFramebuffer(gl.FRAMEBUFFER, o.framebuffer)
    gl.viewport(0, 0, targetWidth, targetRows)
    gl.useProgram(program.program)
    gl.activeTexture(gl.TEXTURE0)
    gl.bindTexture(gl.TEXTURE_2D, texture)
    const u = program.uniforms
    gl.uniform4fv(u.u_row0, setup.rows[0])
    gl.uniform4fv(u.u_row1, setup.rows[1])
    gl.uniform4fv(u.u_row2, setup.rows[2])
    gl.uniform3fv(u.u_grid, setup.grid)
    gl.uniform2f(u.u_image, image.width, image.height)
    gl.uniform1f(u.u_halfFootprint, setup.halfFootprint)
    gl.uniform2f(u.u_target, targetWidth, targetRows)
    gl.uniform1i(u.u_frame, 0)
    gl.uniform1f(u.u_background, job.backgroundSum)
    if (o.indexBuffer !== undefined) {
      gl.bindBuffer(gl.ARRAY_BUFFER, o.indexBuffer)
      gl.enableVertexAttribArray(0)
      gl.vertexAttribPointer(0, 1, gl.FLOAT, false, 0, 0)
    }
    const draw = (first: number, count: number) => {
      gl.uniform1f(u.u_first, block.firstVertex + first)
      gl.drawArrays(gl.POINTS, 0, count)
    }
    // The first draw after a compile also times the compile: not a throughput sample. An upload is
    // part of a block's cost (most blocks bring a new frame), so it stays in.
    const cold = compiled
    if (gl2 !== undefined) await drawPipelined(gl2, o, draw, colours, block.vertexCount, since, signal, cold)
    else await drawInTurns(draw, colours, block.vertexCount, since, signal, cold)
    const flagged = settleFlagged(job, block, image, colours)
    verticesColoured += block.vertexCount
    flaggedVertices += flagged
    return blockResult(block, colours)
  }

  /** WebGL 2: up to two draws in flight, each read into a pack buffer behind a fence polled from timers. */
  async function drawPipelined(
    g: WebGL2RenderingContext,
    o: GlObjects,
    draw: (first: number, count: number) => void,
    colours: Uint8Array,
    total: number,
    since: number,
    signal: AbortSignal | undefined,
    cold: boolean,
  ): Promise<void> {
    interface InFlight {
      first: number
      count: number
      buffer: WebGLBuffer
      sync: WebGLSync
      submitted: number
    }
    const inFlight: InFlight[] = []
    let next = 0
    let slot = 0
    let lastDone = performance.now()
    let sampled = !cold
    try {
      while (next < total || inFlight.length > 0) {
        while (inFlight.length < 2 && next < total) {
          const count = drawSize(total - next)
          const buffer = o.packBuffers[slot]!
          slot = 1 - slot
          draw(next, count)
          g.bindBuffer(g.PIXEL_PACK_BUFFER, buffer)
          g.readPixels(0, 0, targetWidth, Math.ceil(count / targetWidth), g.RGBA, g.UNSIGNED_BYTE, 0)
          g.bindBuffer(g.PIXEL_PACK_BUFFER, null)
          const sync = g.fenceSync(g.SYNC_GPU_COMMANDS_COMPLETE, 0)
          if (sync === null) throw new GpuContextLostError()
          g.flush()
          inFlight.push({ first: next, count, buffer, sync, submitted: performance.now() })
          next += count
        }
        const oldest = inFlight[0]!
        for (;;) {
          check(since, signal)
          const status = g.clientWaitSync(oldest.sync, 0, 0)
          if (status === g.ALREADY_SIGNALED || status === g.CONDITION_SATISFIED) break
          if (status === g.WAIT_FAILED) {
            check(since, signal)
            throw new GpuContextLostError('the GPU stopped answering while colouring a block')
          }
          await pause(1)
        }
        g.bindBuffer(g.PIXEL_PACK_BUFFER, oldest.buffer)
        g.getBufferSubData(g.PIXEL_PACK_BUFFER, 0, colours, oldest.first * 4, oldest.count * 4)
        g.bindBuffer(g.PIXEL_PACK_BUFFER, null)
        g.deleteSync(oldest.sync)
        inFlight.shift()
        const now = performance.now()
        if (sampled) record(oldest.count, now - Math.max(oldest.submitted, lastDone))
        sampled = true
        lastDone = now
      }
    } finally {
      for (const f of inFlight) g.deleteSync(f.sync)
    }
  }

  /** WebGL 1: one synchronous draw and read at a time, yielding to the page between them. */
  async function drawInTurns(
    draw: (first: number, count: number) => void,
    colours: Uint8Array,
    total: number,
    since: number,
    signal: AbortSignal | undefined,
    cold: boolean,
  ): Promise<void> {
    const pixels = scratch!
    let sampled = !cold
    for (let next = 0; next < total;) {
      const count = drawSize(total - next)
      const started = performance.now()
      draw(next, count)
      const rows = Math.ceil(count / targetWidth)
      gl.readPixels(
        0,
        0,
        targetWidth,
        rows,
        gl.RGBA,
        gl.UNSIGNED_BYTE,
        pixels.subarray(0, rows * targetWidth * 4),
      )
      if (sampled) record(count, performance.now() - started)
      sampled = true
      check(since, signal)
      colours.set(pixels.subarray(0, count * 4), next * 4)
      next += count
      if (next < total) {
        await pause(0)
        check(since, signal)
      }
    }
  }

  return {
    backend,
    get renderer() {
      return rendererName(gl)
    },
    get vertexViewsPerSec() {
      return rate
    },
    get verticesColoured() {
      return verticesColoured
    },
    get flaggedVertices() {
      return flaggedVertices
    },
    get contextLost() {
      return lost
    },
    run(job, block, signal) {
      const result = queue.then(() => runBlock(job, block, signal))
      queue = result.catch(() => {})
      return result
    },
    dispose() {
      if (disposed) return
      disposed = true
      canvas.removeEventListener('webglcontextlost', onLost)
      canvas.removeEventListener('webglcontextrestored', onRestored)
      if (objects !== undefined && !gl.isContextLost()) deleteObjects(objects)
      objects = undefined
      // A context this worker made is released at once rather than when it is collected.
      if (ownCanvas) gl.getExtension('WEBGL_lose_context')?.loseContext()
    },
  }
}

/** What one block needs on the GPU, in float64 before it becomes float32 uniforms. */
interface BlockSetup {
  rows: [Float32Array, Float32Array, Float32Array]
  grid: Float32Array
  halfFootprint: number
  /** Vertices in the block's grid (ids must stay below 2^24 to be exact in float32). */
  vertexIds: number
}

/** Checks a block against its job and frame as `colourBlock` does, and folds the projection of grid indices. */
function blockSetup(job: VertexJob, block: Block, image: FrameImage): BlockSetup {
  const { camera, space } = checkBlock(job, block, image)
  const [nx, ny, nz] = space.resolution
  const vertexIds = vertexCount(space)
  const p = projectionMatrix(camera)
  const size = voxelSize(space)
  const centre = space.box.min.map((m, i) => m + 0.5 * size[i]!)
  const row = (r: number) =>
    Float32Array.of(
      p[r * 4]! * size[0],
      p[r * 4 + 1]! * size[1],
      p[r * 4 + 2]! * size[2],
      p[r * 4]! * centre[0]! + p[r * 4 + 1]! * centre[1]! + p[r * 4 + 2]! * centre[2]! + p[r * 4 + 3]!,
    )
  return {
    rows: [row(0), row(1), row(2)],
    grid: Float32Array.of(nx, ny, nz),
    halfFootprint: (focalLength(camera) * voxelEdge(space)) / 2,
    vertexIds,
  }
}

/** Recomputes on the CPU the vertices the GPU flagged; returns how many there were. */
function settleFlagged(job: VertexJob, block: Block, image: FrameImage, colours: Uint8Array): number {
  const [fr, , , fa] = flaggedColour
  let flagged = 0
  for (let i = 0, o = 0; i < block.vertexCount; i++, o += 4) {
    if (colours[o + 3] !== fa || colours[o] !== fr) continue
    const one = colourBlock(job, { ...block, firstVertex: block.firstVertex + i, vertexCount: 1 }, image)
    colours.set(one.colours, o)
    flagged++
  }
  return flagged
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
