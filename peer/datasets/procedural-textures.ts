import { type RGB, scale, sub, type Texture, type Vec3 } from './ray-geometry.ts'

// ---------------------------------------------------------------------------------------------------
// Procedural textures: all functions of the object-space point (and geometric normal), so every view
// sees the same colour at the same point.

/** Hash of an integer lattice point to [0, 1). */
function hash3(seed: number, x: number, y: number, z: number): number {
  let h = seed ^ Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ Math.imul(z, 0x5bd1e995)
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296
}

/** Value noise in [0, 1): hashed lattice values, blended with a quintic fade. */
function valueNoise(seed: number, x: number, y: number, z: number): number {
  const ix = Math.floor(x)
  const iy = Math.floor(y)
  const iz = Math.floor(z)
  const u = fade(x - ix)
  const v = fade(y - iy)
  const w = fade(z - iz)
  const lerp = (a: number, b: number, s: number) => a + (b - a) * s
  const edge = (dy: number, dz: number) =>
    lerp(hash3(seed, ix, iy + dy, iz + dz), hash3(seed, ix + 1, iy + dy, iz + dz), u)
  return lerp(lerp(edge(0, 0), edge(1, 0), v), lerp(edge(0, 1), edge(1, 1), v), w)
}
function fade(t: number): number {
  return t * t * t * (t * (t * 6 - 15) + 10)
}

/** Fractal noise in [0, 1): `octaves` of value noise, each twice the frequency and half the weight. */
function fbm(seed: number, p: Vec3, frequency: number, octaves: number): number {
  let sum = 0
  let weight = 0.5
  let total = 0
  let f = frequency
  for (let i = 0; i < octaves; i++) {
    sum += weight * valueNoise(seed + i * 101, p[0] * f, p[1] * f, p[2] * f)
    total += weight
    weight *= 0.5
    f *= 2.03
  }
  return sum / total
}

function mix(a: RGB, b: RGB, s: number): RGB {
  return [a[0] + (b[0] - a[0]) * s, a[1] + (b[1] - a[1]) * s, a[2] + (b[2] - a[2]) * s]
}
function smoothstep(a: number, b: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - a) / (b - a)))
  return t * t * (3 - 2 * t)
}

/** Pale plaster or limestone with mottling and dark streaky grain, like the temple model's. */
export function grainyPlaster(seed: number, base: RGB): Texture {
  const grain: RGB = [120, 100, 72]
  return (p) => {
    const mottle = fbm(seed, p, 5, 4)
    // Streaks: noise stretched along z, thresholded into thin dark lines.
    const streak = valueNoise(seed + 7, p[0] * 40, p[1] * 40, p[2] * 6)
    const dark = smoothstep(0.72, 0.9, streak) * 0.7 + smoothstep(0.62, 0.75, fbm(seed + 9, p, 14, 2)) * 0.3
    return mix(scale(base, 0.84 + 0.3 * mottle), grain, dark)
  }
}

/** Ashlar masonry: courses of `course` height, blocks `length` long offset every other course, dark joints. */
export function blocks(seed: number, base: RGB, length: number, course: number): Texture {
  const joint: RGB = [105, 90, 70]
  return (p, n) => {
    const row = Math.floor(p[2] / course + 1e-6)
    const offset = (((row % 2) + 2) % 2) * 0.5
    // Joints run on the face: along y on faces looking along x, along x otherwise; tops get a grid.
    const top = Math.abs(n[2]) > 0.7
    const u = (Math.abs(n[0]) > Math.abs(n[1]) ? p[1] : p[0]) / length + offset
    const v = top ? p[1] / length : p[2] / course
    const du = Math.abs(u - Math.round(u)) * length
    const dv = Math.abs(v - Math.round(v)) * (top ? length : course)
    const tint = 0.9 + 0.2 * hash3(seed, Math.floor(u), top ? Math.floor(v) : row, 0)
    const stone = scale(base, tint * (0.85 + 0.3 * fbm(seed + 1, p, 9, 4)))
    return mix(stone, joint, 1 - smoothstep(0.004, 0.009, Math.min(du, dv)))
  }
}

/** Plaster with vertical flutes, darkened in the grooves, around a column at (x, y). */
export function fluted(seed: number, x: number, y: number): Texture {
  const plaster = grainyPlaster(seed, [230, 216, 186])
  return (p, n) => {
    const angle = Math.atan2(p[1] - y, p[0] - x)
    const groove = 0.5 + 0.5 * Math.cos(angle * 16)
    return scale(plaster(p, n), 0.8 + 0.2 * groove)
  }
}

/** Grains of `speck` colour in a `base` ground; `share` of the surface is speck. */
export function speckled(seed: number, base: RGB, speck: RGB, share: number): Texture {
  return (p) => {
    const ground = scale(base, 0.85 + 0.3 * fbm(seed, p, 6, 3))
    const grain = valueNoise(seed + 1, p[0] * 90, p[1] * 90, p[2] * 90)
    return mix(ground, speck, smoothstep(1 - share - 0.04, 1 - share + 0.04, grain))
  }
}

/** Green-blue bronze patina with brown corrosion blotches. */
export function patina(seed: number): Texture {
  return (p) => {
    const green = scale([92, 166, 140], 0.85 + 0.3 * fbm(seed, p, 12, 3))
    return mix(green, [150, 112, 70], smoothstep(0.55, 0.62, fbm(seed + 1, p, 7, 4)))
  }
}

/** Grey granite with dark mica and pink feldspar grains. */
export function granite(seed: number): Texture {
  const dark = speckled(seed, [178, 174, 168], [96, 94, 100], 0.18)
  return (p, n) => {
    const pink = valueNoise(seed + 3, p[0] * 60, p[1] * 60, p[2] * 60)
    return mix(dark(p, n), [214, 170, 150], smoothstep(0.8, 0.86, pink))
  }
}

/** Terracotta with cream bands with wavy edges and thin brown lines, round an axis at (x, y). */
export function paintedClay(seed: number, x: number, y: number): Texture {
  const clay: RGB = [204, 110, 68]
  const cream: RGB = [236, 214, 170]
  const line: RGB = [128, 70, 46]
  return (p) => {
    const angle = Math.atan2(p[1] - y, p[0] - x)
    const body = scale(clay, 0.86 + 0.26 * fbm(seed, p, 8, 4))
    const wave = 0.015 * Math.sin(angle * 12)
    // Brush edges a few millimetres soft, as paint is.
    const wavy = Math.abs(p[2] - 0.5 - wave)
    const band = Math.max(
      1 - smoothstep(0.046, 0.054, wavy),
      1 - smoothstep(0.022, 0.028, Math.abs(p[2] - 0.3)),
    )
    const lined = 1 - smoothstep(0.004, 0.008, Math.abs(wavy - 0.065))
    return mix(mix(body, cream, band * 0.9), line, lined)
  }
}

/**
 * Cobalt glaze with white stripes round a bowl whose sphere is centred at `centre`: slanted stripes
 * outside, concentric rings on the inner surface (nearer the centre than `inner` plus half the wall).
 */
export function stripedGlaze(seed: number, centre: Vec3, inner: number): Texture {
  const blue: RGB = [70, 110, 200]
  const white: RGB = [236, 236, 226]
  return (p) => {
    const q = sub(p, centre)
    const angle = Math.atan2(q[1], q[0])
    const flow = fbm(seed, p, 10, 3)
    const inside = Math.hypot(q[0], q[1], q[2]) < inner + 0.015
    const paint = inside
      ? Math.cos(Math.hypot(q[0], q[1]) * 60) > 0.6
      : Math.cos(angle * 10 - 3 * q[2]) > 0.55
    return mix(scale(blue, 0.85 + 0.3 * flow), white, paint ? 0.8 + 0.2 * flow : 0)
  }
}

/** Pale timber with annual rings about an axis along x, broken up by noise. */
export function wood(seed: number): Texture {
  const light: RGB = [214, 164, 104]
  const dark: RGB = [160, 108, 62]
  return (p) => {
    const r = Math.hypot(p[1] + 0.9, p[2] - 1.4) + 0.06 * fbm(seed, p, 3, 3)
    const ring = smoothstep(0.55, 0.95, 0.5 + 0.5 * Math.sin(r * 120))
    const fibre = valueNoise(seed + 2, p[0] * 4, p[1] * 80, p[2] * 80)
    return scale(mix(light, dark, ring * 0.8), 0.9 + 0.15 * fibre)
  }
}
