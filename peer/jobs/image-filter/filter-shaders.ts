import type { ImageFilter } from './schemas.ts'

/*
 * The image filters as fragment shaders, one program per filter family and radius (the radius is a
 * compile-time constant: WebGL 1 loops need constant bounds, and an unrolled loop is faster).
 * They add the same integers as `filter.ts` in float32, which is exact below 2^24 (the separable
 * filters stay below it; the bilateral sums do not, and may then differ by one level where a channel
 * lies within a few thousandths of a rounding boundary). One fragment is one output pixel; its
 * texels come from the halo rectangle uploaded for the task, where clamp-to-edge sampling repeats the
 * image's edge exactly as the CPU does (the halo is cut from the image, so its edges are the image's
 * wherever a tap falls outside it).
 */

/** Which GLSL a program is written in. */
export type GlslTarget = 'webgl2' | 'webgl1'

/** Programs are shared by filters of one family and radius (taps and tables are uniforms). */
export function programKey(filter: ImageFilter): string {
  return `${filter.type === 'bilateral' ? 'bilateral' : 'separable'}:${filter.radius}`
}

function prelude(target: GlslTarget): string {
  return target === 'webgl2'
    ? '#version 300 es\nprecision highp float;\n#define TEXTURE texture\nout vec4 fragColour;\n#define FRAG fragColour\n'
    : 'precision highp float;\n#define TEXTURE texture2D\n#define FRAG gl_FragColor\n'
}

/** The vertex shader: a full-viewport quad from two triangles. */
export function quadVertexShader(target: GlslTarget): string {
  const attribute = target === 'webgl2' ? 'in' : 'attribute'
  return `${target === 'webgl2' ? '#version 300 es\n' : ''}${attribute} vec2 position;
void main() {
  gl_Position = vec4(position, 0.0, 1.0);
}
`
}

const sampling = `uniform sampler2D u_source;
uniform vec2 u_sourceSize;
uniform vec2 u_offset;
// A channel as its byte value: texels are bytes / 255, so rounding undoes the division exactly.
vec4 texel(vec2 p) {
  return floor(TEXTURE(u_source, (p + 0.5) / u_sourceSize) * 255.0 + 0.5);
}
`

/** The fragment shader of `filter`'s family at its radius. */
export function filterFragmentShader(target: GlslTarget, filter: ImageFilter): string {
  const r = filter.radius
  const n = 2 * r + 1
  const head = `${prelude(target)}const int R = ${r};\n${sampling}`
  if (filter.type !== 'bilateral') {
    return `${head}uniform float u_taps[${n}];
uniform float u_norm;
void main() {
  vec2 centre = floor(gl_FragCoord.xy) + u_offset;
  vec4 total = vec4(0.0);
  for (int j = 0; j < ${n}; j++) {
    vec4 across = vec4(0.0);
    for (int i = 0; i < ${n}; i++) {
      across += u_taps[i] * texel(centre + vec2(float(i - R), float(j - R)));
    }
    total += u_taps[j] * across;
  }
  FRAG = floor(total / u_norm + 0.5) / 255.0;
}
`
  }
  return `${head}// 256×1: red = range factor by channel difference, green = space factor by squared distance.
uniform sampler2D u_weights;
vec4 weightsAt(float i) {
  return floor(TEXTURE(u_weights, vec2((i + 0.5) / 256.0, 0.5)) * 255.0 + 0.5);
}
void main() {
  vec2 centre = floor(gl_FragCoord.xy) + u_offset;
  vec4 value = texel(centre);
  vec4 total = vec4(0.0);
  vec4 weights = vec4(0.0);
  for (int j = 0; j < ${n}; j++) {
    for (int i = 0; i < ${n}; i++) {
      vec2 d = vec2(float(i - R), float(j - R));
      vec4 v = texel(centre + d);
      vec4 diff = abs(v - value);
      vec4 range = vec4(weightsAt(diff.r).r, weightsAt(diff.g).r, weightsAt(diff.b).r, weightsAt(diff.a).r);
      vec4 weight = weightsAt(dot(d, d)).g * range;
      total += weight * v;
      weights += weight;
    }
  }
  FRAG = floor(total / weights + 0.5) / 255.0;
}
`
}
