import * as twgl from 'twgl.js'
import { defaultCanvas, type Gl, openContext, rendererName } from '../../browser/webgl-context.ts'
import type { JobSpec, TaskWorker } from '../kind.ts'
import type { FrameImage } from '../../participant/frame-image.ts'
import type { FrameSource } from '../../participant/frame-source.ts'
import { AbortError, GpuContextLostError, GpuUnavailableError } from '../../protocol/errors.ts'
import { bilateralTables, checkTaskImage, filterRect, separableTaps } from './filter.ts'
import { filterFragmentShader, type GlslTarget, programKey, quadVertexShader } from './filter-shaders.ts'
import type { ImageFilterJob, ImageTask, ImageTaskResult } from './schemas.ts'

/*
 * The WebGL worker of the image-filter kind, loaded by `import()` only in browsers that lend their
 * GPU. Per task it uploads the halo rectangle (the output rectangle grown by the radius, clamped to
 * the image: at most 1040² texels, so any WebGL takes it and no frame texture must be cached), draws
 * one fragment per output pixel into an RGBA8 target, and reads the bytes back. Results equal
 * `filterRect`'s within ±1 per channel (exactly for the separable filters; see filter-shaders.ts).
 */

/** Options of the WebGL worker. */
export interface ImageFilterWebglInit {
  /** Where tasks' images come from (fetched, decoded and cached by URL). */
  frames: FrameSource
  /** Use only this WebGL (default: WebGL 2, else WebGL 1). */
  backend?: GlslTarget
  /** The canvas whose context computes (default: a 1×1 OffscreenCanvas, else a detached `<canvas>`). */
  canvas?: HTMLCanvasElement | OffscreenCanvas
}

/** The WebGL worker: a `TaskWorker` that also names its GPU. */
export interface ImageFilterWebglWorker extends TaskWorker<ImageFilterJob, ImageTask, ImageTaskResult> {
  readonly backend: GlslTarget
  /** The GPU as the browser names it. */
  readonly renderer: string
}

/** Programs and the quad: rebuilt after a lost context comes back. */
interface GlObjects {
  programs: Map<string, twgl.ProgramInfo>
  quad: twgl.BufferInfo
}

/** Opens a WebGL worker; throws `GpuUnavailableError` when the browser offers no usable WebGL. */
export function createImageFilterWebglWorker(init: ImageFilterWebglInit): ImageFilterWebglWorker {
  const ownCanvas = init.canvas === undefined
  const canvas = init.canvas ?? defaultCanvas()
  const { gl, backend } = openContext(canvas, init.backend)
  let objects: GlObjects | undefined
  let lost = false
  let disposed = false

  const onLost = (event: Event) => {
    // Without preventDefault the browser never restores the context.
    event.preventDefault()
    lost = true
    objects = undefined
  }
  const onRestored = () => {
    lost = false
  }
  canvas.addEventListener('webglcontextlost', onLost)
  canvas.addEventListener('webglcontextrestored', onRestored)

  function check(signal: AbortSignal | undefined): void {
    if (signal?.aborted) throw new AbortError()
    if (disposed) throw new GpuContextLostError('the WebGL worker was disposed')
    if (lost || gl.isContextLost()) {
      throw new GpuContextLostError('the WebGL context was lost while filtering a tile; the tile goes back')
    }
  }

  function programFor(o: GlObjects, job: ImageFilterJob): twgl.ProgramInfo {
    const key = programKey(job.filter)
    let program = o.programs.get(key)
    if (program === undefined) {
      let report = ''
      // twgl compiles both shaders, links, then reports each failure with the source's line numbers.
      const compiled = twgl.createProgramInfo(
        gl,
        [quadVertexShader(backend), filterFragmentShader(backend, job.filter)],
        { errorCallback: (message: string) => (report += `\n${message}`) },
      ) as twgl.ProgramInfo | null
      if (compiled === null) {
        throw new GpuUnavailableError(
          `this GPU cannot compile the image filter ${key} (${backend}):${report}`,
        )
      }
      program = compiled
      o.programs.set(key, program)
    }
    return program
  }

  function filterTile(job: ImageFilterJob, task: ImageTask, image: FrameImage): Uint8Array {
    const r = job.filter.radius
    const halo = haloOf(task, image, r)
    const maxTexture = gl.getParameter(gl.MAX_TEXTURE_SIZE) as number
    if (halo.w > maxTexture || halo.h > maxTexture) return filterRect(image, job.filter, task)
    objects ??= {
      programs: new Map(),
      quad: twgl.createBufferInfoFromArrays(gl, {
        position: { numComponents: 2, data: [-1, -1, 1, -1, -1, 1, -1, 1, 1, -1, 1, 1] },
      }),
    }
    const program = programFor(objects, job)
    const source = upload(gl, backend, halo.w, halo.h, haloPixels(image, halo))
    const textures = [source]
    const uniforms: Record<string, unknown> = {
      u_source: source,
      u_sourceSize: [halo.w, halo.h],
      u_offset: [task.x - halo.x, task.y - halo.y],
    }
    if (job.filter.type === 'bilateral') {
      const tables = bilateralTables(job.filter)
      const lut = new Uint8Array(256 * 4)
      for (let i = 0; i < 256; i++) {
        lut[i * 4] = tables.range[i]!
        lut[i * 4 + 1] = tables.space[i] ?? 0
      }
      uniforms.u_weights = upload(gl, backend, 256, 1, lut)
      textures.push(uniforms.u_weights as WebGLTexture)
    } else {
      const { taps, sum } = separableTaps(job.filter)
      uniforms.u_taps = Float32Array.from(taps)
      uniforms.u_norm = sum * sum
    }
    const target = twgl.createFramebufferInfo(
      gl,
      [{ format: gl.RGBA, type: gl.UNSIGNED_BYTE, min: gl.NEAREST, mag: gl.NEAREST, wrap: gl.CLAMP_TO_EDGE }],
      task.w,
      task.h,
    )
    try {
      // Binds the target and sets the viewport to the task's rectangle.
      twgl.bindFramebufferInfo(gl, target)
      if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE && !gl.isContextLost()) {
        throw new GpuUnavailableError(
          'this browser cannot render into an 8-bit RGBA texture, so it cannot lend its GPU',
        )
      }
      for (const cap of [
        gl.BLEND,
        gl.DEPTH_TEST,
        gl.STENCIL_TEST,
        gl.SCISSOR_TEST,
        gl.DITHER,
        gl.CULL_FACE,
      ]) {
        gl.disable(cap)
      }
      gl.useProgram(program.program)
      twgl.setBuffersAndAttributes(gl, program, objects.quad)
      twgl.setUniforms(program, uniforms)
      twgl.drawBufferInfo(gl, objects.quad)
      const rgba = new Uint8Array(task.w * task.h * 4)
      gl.pixelStorei(gl.PACK_ALIGNMENT, 1)
      gl.readPixels(0, 0, task.w, task.h, gl.RGBA, gl.UNSIGNED_BYTE, rgba)
      return rgba
    } finally {
      twgl.bindFramebufferInfo(gl, null)
      gl.deleteFramebuffer(target.framebuffer)
      for (const attachment of target.attachments) gl.deleteTexture(attachment)
      for (const texture of textures) gl.deleteTexture(texture)
    }
  }

  return {
    backend,
    get renderer() {
      return rendererName(gl)
    },
    async run(job: JobSpec<ImageFilterJob>, task: ImageTask, signal?: AbortSignal): Promise<ImageTaskResult> {
      check(signal)
      const image = await init.frames.get(task.imageUrl, signal)
      check(signal)
      checkTaskImage(task, image)
      // From here to the read-back nothing awaits: tasks share the context without interleaving.
      const rgba = filterTile(job.description, task, image)
      check(signal)
      const { jobId, frameIndex, x, y, w, h } = task
      return { jobId, frameIndex, x, y, w, h, rgba }
    },
    dispose() {
      if (disposed) return
      disposed = true
      canvas.removeEventListener('webglcontextlost', onLost)
      canvas.removeEventListener('webglcontextrestored', onRestored)
      if (objects !== undefined && !gl.isContextLost()) {
        for (const p of objects.programs.values()) gl.deleteProgram(p.program)
        for (const attribute of Object.values(objects.quad.attribs ?? {})) gl.deleteBuffer(attribute.buffer)
      }
      objects = undefined
      // A context this worker made is released at once rather than when it is collected.
      if (ownCanvas) gl.getExtension('WEBGL_lose_context')?.loseContext()
    },
  }
}

interface Rect {
  x: number
  y: number
  w: number
  h: number
}

/** The task's rectangle grown by the radius and clamped to the image. */
function haloOf(task: ImageTask, image: FrameImage, r: number): Rect {
  const x = Math.max(0, task.x - r)
  const y = Math.max(0, task.y - r)
  return {
    x,
    y,
    w: Math.min(image.width, task.x + task.w + r) - x,
    h: Math.min(image.height, task.y + task.h + r) - y,
  }
}

/** The halo's pixels, contiguous (a view when the halo spans whole rows). */
function haloPixels(image: FrameImage, halo: Rect): Uint8Array {
  const rowBytes = image.width * 4
  if (halo.w === image.width) return image.rgba.subarray(halo.y * rowBytes, (halo.y + halo.h) * rowBytes)
  const pixels = new Uint8Array(halo.w * halo.h * 4)
  for (let j = 0; j < halo.h; j++) {
    const start = (halo.y + j) * rowBytes + halo.x * 4
    pixels.set(image.rgba.subarray(start, start + halo.w * 4), j * halo.w * 4)
  }
  return pixels
}

/** An RGBA8 texture of exactly these bytes: no flip, no premultiplication, nearest, clamped to edge. */
function upload(
  gl: Gl,
  backend: GlslTarget,
  width: number,
  height: number,
  pixels: Uint8Array,
): WebGLTexture {
  const texture = gl.createTexture()
  gl.bindTexture(gl.TEXTURE_2D, texture)
  gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1)
  gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false)
  gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false)
  gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE)
  const internal = backend === 'webgl2' ? (gl as WebGL2RenderingContext).RGBA8 : gl.RGBA
  gl.texImage2D(gl.TEXTURE_2D, 0, internal, width, height, 0, gl.RGBA, gl.UNSIGNED_BYTE, pixels)
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST)
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST)
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE)
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE)
  return texture
}
