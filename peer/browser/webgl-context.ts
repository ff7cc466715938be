import { GpuUnavailableError } from '../protocol/errors.ts'

/*
 * The WebGL plumbing every kind's WebGL worker shares: opening a context for computing (WebGL 2,
 * else WebGL 1 with exact integer arithmetic), and naming the GPU. Each kind compiles its own
 * programs (`peer/jobs/<kind>/`).
 */

/** A WebGL context of either version. */
export type Gl = WebGLRenderingContext | WebGL2RenderingContext

/** Which WebGL a worker computes with. */
export type GlslTarget = 'webgl2' | 'webgl1'

/** An offscreen context for computing: no antialiasing, depth or premultiplied alpha. */
const contextAttributes: WebGLContextAttributes = {
  alpha: true,
  antialias: false,
  depth: false,
  stencil: false,
  premultipliedAlpha: false,
  preserveDrawingBuffer: false,
  powerPreference: 'high-performance',
}

export function defaultCanvas(): HTMLCanvasElement | OffscreenCanvas {
  if (typeof OffscreenCanvas !== 'undefined') return new OffscreenCanvas(1, 1)
  if (typeof document !== 'undefined') return document.createElement('canvas')
  throw new GpuUnavailableError('this browser has no canvas to compute with, so it cannot lend its GPU')
}

/** Opens WebGL 2, else WebGL 1 (or only the one asked for), with high-precision fragment floats. */
export function openContext(
  canvas: HTMLCanvasElement | OffscreenCanvas,
  wanted: GlslTarget | undefined,
): { gl: Gl; backend: GlslTarget } {
  const open = canvas.getContext.bind(canvas) as (id: string, attributes: WebGLContextAttributes) => unknown
  if (wanted !== 'webgl1') {
    const gl = open('webgl2', contextAttributes) as WebGL2RenderingContext | null
    if (gl !== null) return { gl, backend: 'webgl2' }
  }
  if (wanted !== 'webgl2') {
    const gl = open('webgl', contextAttributes) as WebGLRenderingContext | null
    if (gl !== null) {
      // Exact integer sums need 24-bit floats in the fragment shader; WebGL 1 only promises 10.
      const high = gl.getShaderPrecisionFormat(gl.FRAGMENT_SHADER, gl.HIGH_FLOAT)
      if (high !== null && high.precision >= 23) return { gl, backend: 'webgl1' }
      throw new GpuUnavailableError(
        'this browser’s WebGL 1 has no high-precision floats in fragment shaders, so its GPU cannot compute exactly; the CPU will be used instead',
      )
    }
  }
  const which =
    wanted === undefined ? 'neither WebGL 2 nor WebGL 1' : `no ${wanted === 'webgl2' ? 'WebGL 2' : 'WebGL 1'}`
  throw new GpuUnavailableError(
    `this browser offers ${which} (it may be turned off, or the graphics driver blocked), so it cannot lend its GPU; the CPU will be used instead`,
  )
}

export function setNearest(gl: Gl): void {
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST)
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST)
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE)
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE)
}

/**
 * Which WebGL this browser offers for computing, and on what (the renderer's name), without keeping
 * a context: the app decides GPU or CPU once, and each job kind opens its own context on its first
 * task. Throws `GpuUnavailableError` as `openContext` does.
 */
export function probeWebgl(backend?: GlslTarget): { backend: GlslTarget; renderer: string } {
  const { gl, backend: opened } = openContext(defaultCanvas(), backend)
  const renderer = rendererName(gl)
  gl.getExtension('WEBGL_lose_context')?.loseContext()
  return { backend: opened, renderer }
}

export function rendererName(gl: Gl): string {
  const info = gl.getExtension('WEBGL_debug_renderer_info')
  const name: unknown =
    info !== null ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)
  return typeof name === 'string' ? name : 'unknown (context lost)'
}
