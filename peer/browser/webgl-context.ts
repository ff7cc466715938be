import {
  colourBlockShaders,
  type GlslTarget,
  indexAttribute,
  type UniformName,
  uniformNames,
} from '../jobs/vertex/shaders/colour-block.ts'
import { GpuUnavailableError } from '../protocol/errors.ts'

/*
 * The WebGL plumbing of the compute backend: opening a context (WebGL 2, else WebGL 1), naming the
 * GPU, and compiling the colouring program. `webgl-worker.ts` drives them block by block.
 */

/** A WebGL context of either version. */
export type Gl = WebGLRenderingContext | WebGL2RenderingContext

/** The colouring program of one area radius, and its uniforms' locations. */
export interface ColourProgram {
  program: WebGLProgram
  uniforms: Record<UniformName, WebGLUniformLocation | null>
}

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
        'this browser’s WebGL 1 has no high-precision floats in fragment shaders, so its GPU cannot colour exactly; the CPU will be used instead',
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

/**
 * Compiles both shaders, links, and only then checks: a failure names the shader and quotes its
 * source with line numbers, as a participant's bug report needs.
 */
export function linkColourProgram(gl: Gl, target: GlslTarget, maxAreaRadius: number): ColourProgram {
  const sources = colourBlockShaders(target, maxAreaRadius)
  const program = gl.createProgram()
  const shaders = [
    { kind: 'vertex', type: gl.VERTEX_SHADER, source: sources.vertex },
    { kind: 'fragment', type: gl.FRAGMENT_SHADER, source: sources.fragment },
  ].map((s) => {
    const shader = gl.createShader(s.type)!
    gl.shaderSource(shader, s.source)
    gl.compileShader(shader)
    gl.attachShader(program, shader)
    return { ...s, shader }
  })
  if (target === 'webgl1') gl.bindAttribLocation(program, 0, indexAttribute)
  gl.linkProgram(program)
  const linked = gl.getProgramParameter(program, gl.LINK_STATUS) === true || gl.isContextLost()
  let report = ''
  if (!linked) {
    for (const s of shaders) {
      if (gl.getShaderParameter(s.shader, gl.COMPILE_STATUS) === true) continue
      const numbered = s.source
        .split('\n')
        .map((line, i) => `${String(i + 1).padStart(3)}: ${line}`)
        .join('\n')
      report += `\n${s.kind} shader: ${gl.getShaderInfoLog(s.shader) ?? ''}\n${numbered}`
    }
    report ||= `\n${gl.getProgramInfoLog(program) ?? ''}`
  }
  for (const s of shaders) {
    gl.detachShader(program, s.shader)
    gl.deleteShader(s.shader)
  }
  if (!linked) {
    gl.deleteProgram(program)
    throw new GpuUnavailableError(`this GPU cannot compile the colouring shaders (${target}):${report}`)
  }
  const uniforms = Object.fromEntries(
    uniformNames.map((n) => [n, gl.getUniformLocation(program, n)]),
  ) as Record<UniformName, WebGLUniformLocation | null>
  return { program, uniforms }
}
