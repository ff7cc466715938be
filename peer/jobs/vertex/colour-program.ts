import type { Gl } from '../../browser/webgl-context.ts'
import { GpuUnavailableError } from '../../protocol/errors.ts'
import {
  colourBlockShaders,
  type GlslTarget,
  indexAttribute,
  type UniformName,
  uniformNames,
} from './shaders/colour-block.ts'

/** The colouring program of one area radius, and its uniforms' locations. */
export interface ColourProgram {
  program: WebGLProgram
  uniforms: Record<UniformName, WebGLUniformLocation | null>
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
