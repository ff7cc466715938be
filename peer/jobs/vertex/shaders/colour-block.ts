/**
 * The GLSL of the WebGL compute backend (`peer/jobs/vertex/webgl-worker.ts`): one draw of `gl.POINTS`
 * colours a run of a block's vertices, vertex i of the draw to pixel (i mod W, i div W) of an
 * offscreen RGBA8 framebuffer, so `readPixels` returns the block result in the layout of
 * `BlockResult.colours`. The rule is `peer/jobs/vertex/sampling.ts`, followed exactly:
 *
 * - The vertex shader projects the vertex and decides px, py and r. float32 cannot always agree with
 *   the CPU's float64 there, so a vertex whose quotient x/w + ½, y/w + ½ or f·e/(2w) lies within a
 *   small epsilon of its rounding boundary (or whose depth w is within rounding of 0) is not decided
 *   on the GPU: it comes out as `flaggedColour`, an output no valid thread has, and the worker
 *   recomputes it on the CPU.
 * - The fragment shader sums the colour's area texel by texel (the (2r+1)² area, or a wider one
 *   around a small footprint: rule 3), in integers held exactly in float32 (every value stays below
 *   2^24), counts the coverage over the (2r+1)² area, and rounds the means and the coverage as rules
 *   5–6 say.
 *
 * One source serves WebGL 2 (GLSL ES 3.00) and WebGL 1 (GLSL ES 1.00); a short header of macros per
 * version picks the vertex index, varyings, texel fetch and loops. GLSL ES 1.00 needs constant loop
 * bounds, so a program is compiled per `maxAreaRadius` (in both versions, to keep one source).
 */

import { samplingDefaults } from '../defaults.ts'

/** Which WebGL the sources are written for. */
export type GlslTarget = 'webgl2' | 'webgl1'

/**
 * How close to a rounding boundary a vertex is sent to the CPU. Measured by emulating the shader's
 * float32 arithmetic with `Math.fround` (the folded projection below, true division and division by a
 * rounded reciprocal) against the CPU's float64 over the 16 templeSparseRing cameras at grids 48, 128
 * and 256 (73.7 M vertex views): the worst error of x/w + ½ and y/w + ½ was 1.73e-4 px and of
 * f·e/(2w) 9.7e-7. The margins are generous multiples of those, for GPUs that round differently
 * (fused multiply-adds, approximate reciprocals) and for larger images.
 */
export const exactnessMargins = {
  /** Pixel quotients within this of an integer are flagged: 2^-9 px, 11× the worst measured error. Flags ~0.8 % of views. */
  pixel: 2 ** -9,
  /** Radius quotients within this of an integer (at most maxAreaRadius) are flagged: 2^-14, 60× the worst measured. */
  radius: 2 ** -14,
  /**
   * Depths w within this share of Σ|terms| of w of zero are flagged: 2^-16, 32× the float32 error bound
   * of a four-term dot product (no templeSparseRing vertex comes near it).
   */
  depth: 2 ** -16,
} as const

/** RGBA the shader writes for a vertex it leaves to the CPU: alpha 0 always comes with RGB 0 in a valid result. */
export const flaggedColour: readonly [number, number, number, number] = [255, 255, 255, 0]

/** Name of the WebGL 1 vertex-index attribute (WebGL 2 uses gl_VertexID and needs no attribute). */
export const indexAttribute = 'a_index'

/** The uniforms both programs declare. */
export const uniformNames = [
  'u_row0',
  'u_row1',
  'u_row2',
  'u_grid',
  'u_first',
  'u_image',
  'u_halfFootprint',
  'u_target',
  'u_frame',
  'u_background',
] as const

/** A uniform of the colour-block program. */
export type UniformName = (typeof uniformNames)[number]

const headers: Record<GlslTarget, { vertex: string; fragment: string }> = {
  webgl2: {
    vertex: `#version 300 es
#define VERTEX_INDEX float(gl_VertexID)
#define VARYING flat out
`,
    fragment: `#version 300 es
#define VARYING flat in
#define DYNAMIC_LOOPS 1
#define FETCH(x, y) texelFetch(u_frame, ivec2(int(x), int(y)), 0)
precision highp float;
out vec4 o_colour;
#define FRAG_COLOUR o_colour
`,
  },
  webgl1: {
    vertex: `attribute float ${indexAttribute};
#define VERTEX_INDEX ${indexAttribute}
#define VARYING varying
`,
    fragment: `#define VARYING varying
#define FETCH(x, y) texture2D(u_frame, (vec2(x, y) + 0.5) / u_image)
#define FRAG_COLOUR gl_FragColor
`,
  },
}

/** GLSL float literal (GLSL ES 1.00 has no integer-to-float promotion). */
function glslFloat(value: number): string {
  const text = String(value)
  return /[.e]/.test(text) ? text : `${text}.0`
}

const vertexBody = `
precision highp float;
// Projection of grid indices: (x, y, w) = A * (ix, iy, iz, 1), A = P * (voxel size, origin + half a voxel)
// folded in float64 on the CPU, so the GPU multiplies exact small integers only.
uniform vec4 u_row0;
uniform vec4 u_row1;
uniform vec4 u_row2;
uniform vec3 u_grid;           // vertices along x, y, z
uniform float u_first;         // id of this draw's first vertex
uniform vec2 u_image;          // frame width, height
uniform float u_halfFootprint; // f * e / 2
uniform vec2 u_target;         // framebuffer width, height
VARYING vec4 v_area;           // px, py, r, state

const float UNSEEN = 0.0;
const float SEEN = 1.0;
const float FLAGGED = 2.0;

// floor(a / b) for integers a >= 0, b > 0 below 2^24: the float quotient, corrected by one either way.
float floorDiv(float a, float b) {
  float q = floor(a / b);
  if (q * b > a) q -= 1.0;
  else if ((q + 1.0) * b <= a) q += 1.0;
  return q;
}

bool nearInteger(float u, float margin) {
  return abs(u - floor(u + 0.5)) < margin;
}

void main() {
  float local = VERTEX_INDEX;
  float row = floorDiv(local, u_target.x);
  float column = local - row * u_target.x;
  gl_Position = vec4((column + 0.5) / u_target.x * 2.0 - 1.0, (row + 0.5) / u_target.y * 2.0 - 1.0, 0.0, 1.0);
  gl_PointSize = 1.0;

  float id = u_first + local;
  float rest = floorDiv(id, u_grid.x);
  float iz = floorDiv(rest, u_grid.y);
  vec4 g = vec4(id - rest * u_grid.x, rest - iz * u_grid.y, iz, 1.0);
  v_area = vec4(0.0, 0.0, 0.0, UNSEEN);

  float w = dot(u_row2, g);
  float wMargin = dot(abs(u_row2), g) * DEPTH_MARGIN;
  if (w < -wMargin) return;
  if (w <= wMargin) {
    v_area.w = FLAGGED;
    return;
  }
  float u = dot(u_row0, g) / w + 0.5;
  float v = dot(u_row1, g) / w + 0.5;
  float px = floor(u);
  float py = floor(v);
  // Off the image by more than a pixel: unseen however the quotient rounds.
  if (px < -1.0 || px > u_image.x || py < -1.0 || py > u_image.y) return;
  if (nearInteger(u, PIXEL_MARGIN) || nearInteger(v, PIXEL_MARGIN)) {
    v_area.w = FLAGGED;
    return;
  }
  if (px < 0.0 || px >= u_image.x || py < 0.0 || py >= u_image.y) return;
  float q = u_halfFootprint / w;
  if (floor(q + 0.5) <= MAX_R && nearInteger(q, RADIUS_MARGIN)) {
    v_area.w = FLAGGED;
    return;
  }
  v_area = vec4(px, py, min(MAX_R, floor(q)), SEEN);
}
`

const fragmentBody = `
precision highp float;
precision highp int;
uniform highp sampler2D u_frame;
uniform vec2 u_image;
uniform float u_background; // a pixel is foreground when R+G+B exceeds this
VARYING vec4 v_area;

// floor(num / den) for integers num >= 0, den > 0 below 2^24: the float quotient, corrected by one.
float exactQuotient(float num, float den) {
  float q = floor(num / den);
  if (q * den > num) q -= 1.0;
  else if ((q + 1.0) * den <= num) q += 1.0;
  return q;
}

// One pixel of the colour's area; \`inArea\` when it is also in the footprint's area (the coverage's).
void accumulate(vec4 texel, bool inArea, inout vec3 sum, inout float mc, inout float m) {
  vec3 c = floor(texel.rgb * 255.0 + 0.5);
  if (c.r + c.g + c.b > u_background) {
    sum += c;
    mc += 1.0;
    if (inArea) m += 1.0;
  }
}

void main() {
  if (v_area.w < 0.5) {
    FRAG_COLOUR = vec4(0.0);
    return;
  }
  if (v_area.w > 1.5) {
    FRAG_COLOUR = FLAGGED_COLOUR;
    return;
  }
  float px = v_area.x;
  float py = v_area.y;
  float r = v_area.z;
  float left = max(px - r, 0.0);
  float top = max(py - r, 0.0);
  float right = min(px + r + 1.0, u_image.x);
  float bottom = min(py + r + 1.0, u_image.y);
  // The colour's area (rule 3): the same square, or a wider one around a small footprint.
  float rc = min(MAX_R, max(r, MIN_COLOUR_R));
  float colourLeft = max(px - rc, 0.0);
  float colourTop = max(py - rc, 0.0);
  float colourRight = min(px + rc + 1.0, u_image.x);
  float colourBottom = min(py + rc + 1.0, u_image.y);
  vec3 sum = vec3(0.0);
  float mc = 0.0;
  float m = 0.0;
#ifdef DYNAMIC_LOOPS
  for (int y = int(colourTop); y < int(colourBottom); y++) {
    for (int x = int(colourLeft); x < int(colourRight); x++) {
      bool inArea = float(x) >= left && float(x) < right && float(y) >= top && float(y) < bottom;
      accumulate(FETCH(x, y), inArea, sum, mc, m);
    }
  }
#else
  for (int dy = -MAX_R_INT; dy <= MAX_R_INT; dy++) {
    float y = py + float(dy);
    if (y < colourTop || y >= colourBottom) continue;
    for (int dx = -MAX_R_INT; dx <= MAX_R_INT; dx++) {
      float x = px + float(dx);
      if (x < colourLeft || x >= colourRight) continue;
      bool inArea = x >= left && x < right && y >= top && y < bottom;
      accumulate(FETCH(x, y), inArea, sum, mc, m);
    }
  }
#endif
  float n = (right - left) * (bottom - top);
  vec3 colour = vec3(0.0);
  if (m > 0.0) {
    float halfM = floor(mc * 0.5);
    colour = vec3(
      exactQuotient(sum.r + halfM, mc),
      exactQuotient(sum.g + halfM, mc),
      exactQuotient(sum.b + halfM, mc)
    );
  }
  float alpha = 1.0 + exactQuotient(254.0 * m + floor(n * 0.5), n);
  FRAG_COLOUR = vec4(colour, alpha) / 255.0;
}
`

/** The vertex and fragment sources of the colour-block program for one WebGL version and area radius. */
export function colourBlockShaders(
  target: GlslTarget,
  maxAreaRadius: number,
): { vertex: string; fragment: string } {
  if (!Number.isInteger(maxAreaRadius) || maxAreaRadius < 0 || maxAreaRadius > 64) {
    throw new RangeError(`maxAreaRadius must be an integer from 0 to 64, not ${maxAreaRadius}`)
  }
  const [fr, fg, fb, fa] = flaggedColour.map((c) => glslFloat(c / 255))
  const constants = `#define MAX_R ${glslFloat(maxAreaRadius)}
#define MAX_R_INT ${maxAreaRadius}
#define MIN_COLOUR_R ${glslFloat(samplingDefaults.minColourRadius)}
#define PIXEL_MARGIN ${glslFloat(exactnessMargins.pixel)}
#define RADIUS_MARGIN ${glslFloat(exactnessMargins.radius)}
#define DEPTH_MARGIN ${glslFloat(exactnessMargins.depth)}
#define FLAGGED_COLOUR vec4(${fr}, ${fg}, ${fb}, ${fa})
`
  const header = headers[target]
  return {
    vertex: header.vertex + constants + vertexBody,
    fragment: header.fragment + constants + fragmentBody,
  }
}
