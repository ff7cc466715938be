import * as twgl from 'twgl.js'
import { defaultCanvas, openContext, rendererName } from '../../browser/webgl-context.ts'
import { GpuContextLostError, GpuUnavailableError } from '../../protocol/errors.ts'
import { fingerprintFormat } from './format.ts'
import type { LumaMatrix } from './luma-box.ts'

/*
 * The per-frame transform of fingerprinting on the GPU: a decoded frame (a WebCodecs VideoFrame or a
 * <video> element, uploaded as a texture without a copy through the CPU) reduced to `decodeSize`²
 * full-range luminance (ffmpeg's gray). Each output pixel is the area-weighted mean of the source texels it
 * covers, as `boxLuma` computes on the CPU (the reference); only the 16 KiB result is read back.
 * WebGL 2 only (texelFetch and integer loops); a browser with WebGL 1 fingerprints on the CPU.
 */

/** Source texels one output pixel may span per axis: a 4096-pixel-wide video over 128 spans 33. */
const maxSpan = 40

const vertexShader = `#version 300 es
in vec2 position;
void main() { gl_Position = vec4(position, 0.0, 1.0); }
`

const fragmentShader = `#version 300 es
precision highp float;
precision highp int;
uniform sampler2D u_source;
uniform vec2 u_sourceSize;
uniform float u_outSize;
uniform vec3 u_matrix;
out vec4 colour;

// The share of source texel s of the output span [from, to) along an axis.
float cover(float s, float from, float to) {
  return max(0.0, min(to, s + 1.0) - max(from, s));
}

void main() {
  // Rows from the top: texture row 0 is the frame's top row, and the framebuffer's row 0 is read first.
  vec2 out_ = floor(gl_FragCoord.xy);
  vec2 scale = u_sourceSize / u_outSize;
  vec2 from = out_ * scale;
  vec2 to = from + scale;
  ivec2 first = ivec2(floor(from));
  ivec2 last = min(ivec2(ceil(to)) - 1, ivec2(u_sourceSize) - 1);
  float sum = 0.0;
  for (int dy = 0; dy < ${maxSpan}; dy++) {
    int y = first.y + dy;
    if (y > last.y) break;
    float wy = cover(float(y), from.y, to.y);
    float row = 0.0;
    for (int dx = 0; dx < ${maxSpan}; dx++) {
      int x = first.x + dx;
      if (x > last.x) break;
      vec3 rgb = texelFetch(u_source, ivec2(x, y), 0).rgb * 255.0;
      row += dot(rgb, u_matrix) * cover(float(x), from.x, to.x);
    }
    sum += row * wy;
  }
  // Full range, as ffmpeg's gray.
  colour = vec4(sum / (scale.x * scale.y) / 255.0, 0.0, 0.0, 1.0);
}
`

/** A GPU luminance transform, while open. */
export interface WebglLuma {
  readonly renderer: string
  /** `source` (`width` × `height`, converted to RGB with `matrix`) as `decodeSize`² luminance. */
  luma(source: TexImageSource, width: number, height: number, matrix: LumaMatrix): Uint8Array
  dispose(): void
}

/** Opens the transform; throws `GpuUnavailableError` without WebGL 2 or a usable program. */
export function openWebglLuma(canvas: HTMLCanvasElement | OffscreenCanvas = defaultCanvas()): WebglLuma {
  const { gl, backend } = openContext(canvas, 'webgl2')
  if (backend !== 'webgl2') throw new GpuUnavailableError('fingerprinting on the GPU needs WebGL 2')
  const gl2 = gl as WebGL2RenderingContext
  let report = ''
  const program = twgl.createProgramInfo(gl2, [vertexShader, fragmentShader], {
    errorCallback: (message: string) => (report += `\n${message}`),
  }) as twgl.ProgramInfo | null
  if (program === null)
    throw new GpuUnavailableError(`this GPU cannot compile the luminance program:${report}`)
  const size = fingerprintFormat.decodeSize
  const quad = twgl.createBufferInfoFromArrays(gl2, {
    position: { numComponents: 2, data: [-1, -1, 1, -1, -1, 1, -1, 1, 1, -1, 1, 1] },
  })
  const target = twgl.createFramebufferInfo(
    gl2,
    [{ format: gl2.RGBA, type: gl2.UNSIGNED_BYTE, min: gl2.NEAREST, mag: gl2.NEAREST }],
    size,
    size,
  )
  const texture = gl2.createTexture()
  const pixels = new Uint8Array(size * size * 4)
  return {
    renderer: rendererName(gl2),
    luma(source, width, height, matrix) {
      if (gl2.isContextLost())
        throw new GpuContextLostError('the WebGL context was lost while fingerprinting')
      if (width / size > maxSpan - 2 || height / size > maxSpan - 2)
        throw new GpuUnavailableError(`a ${width}×${height} frame is larger than the GPU transform takes`)
      gl2.bindTexture(gl2.TEXTURE_2D, texture)
      gl2.pixelStorei(gl2.UNPACK_FLIP_Y_WEBGL, false)
      gl2.pixelStorei(gl2.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false)
      gl2.texImage2D(gl2.TEXTURE_2D, 0, gl2.RGBA, gl2.RGBA, gl2.UNSIGNED_BYTE, source)
      gl2.texParameteri(gl2.TEXTURE_2D, gl2.TEXTURE_MIN_FILTER, gl2.NEAREST)
      gl2.texParameteri(gl2.TEXTURE_2D, gl2.TEXTURE_MAG_FILTER, gl2.NEAREST)
      twgl.bindFramebufferInfo(gl2, target)
      gl2.useProgram(program.program)
      twgl.setBuffersAndAttributes(gl2, program, quad)
      twgl.setUniforms(program, {
        u_source: texture,
        u_sourceSize: [width, height],
        u_outSize: size,
        u_matrix: [matrix.r, matrix.g, matrix.b],
      })
      twgl.drawBufferInfo(gl2, quad)
      gl2.readPixels(0, 0, size, size, gl2.RGBA, gl2.UNSIGNED_BYTE, pixels)
      const out = new Uint8Array(size * size)
      for (let i = 0; i < out.length; i++) out[i] = pixels[i * 4]!
      return out
    },
    dispose() {
      gl2.deleteTexture(texture)
      gl2.getExtension('WEBGL_lose_context')?.loseContext()
    },
  }
}
