// Constructive solid geometry for the textured scenes: primitives and their unions, intersections and
// differences, with their bounds; rays cast through them (the spans inside, the first surface hit,
// shadow occlusion) and points tested against them (the ground truth).

export type Vec3 = [number, number, number]
/** A colour in sRGB 0–255, as an artist would pick it. */
export type RGB = [number, number, number]

/** Surface colour (sRGB 0–255) at a point in object space, given the outward geometric normal there. */
export type Texture = (p: Vec3, n: Vec3) => RGB

/** An axis-aligned box that may be infinite on some sides (a half-space's bounds). */
export interface Bounds {
  readonly min: Vec3
  readonly max: Vec3
}

/** A primitive solid. */
export type Primitive =
  | { kind: 'box'; centre: Vec3; half: Vec3 }
  | { kind: 'ellipsoid'; centre: Vec3; radii: Vec3 }
  /** A finite cylinder along a coordinate axis: `half` is half its length. */
  | { kind: 'cylinder'; centre: Vec3; radius: number; half: number; axis: 0 | 1 | 2 }
  /** The points p with normal·p ≤ offset. */
  | { kind: 'halfspace'; normal: Vec3; offset: number }

/** A primitive solid with the texture of its surface. */
export type Leaf = Primitive & { texture: Texture; bounds: Bounds }

/** A constructive solid: a primitive, or a union, intersection or difference of solids. */
export type Shape =
  | Leaf
  | { kind: 'union' | 'intersect'; parts: Shape[]; bounds: Bounds }
  | { kind: 'subtract'; from: Shape; cut: Shape; bounds: Bounds }

// ---------------------------------------------------------------------------------------------------
// Bounds

/** The axis-aligned bounds of a primitive (infinite where it is unbounded). */
export function leafBounds(leaf: Primitive): Bounds {
  switch (leaf.kind) {
    case 'box':
      return { min: sub(leaf.centre, leaf.half), max: add(leaf.centre, leaf.half) }
    case 'ellipsoid':
      return { min: sub(leaf.centre, leaf.radii), max: add(leaf.centre, leaf.radii) }
    case 'cylinder': {
      const half: Vec3 = [leaf.radius, leaf.radius, leaf.radius]
      half[leaf.axis] = leaf.half
      return { min: sub(leaf.centre, half), max: add(leaf.centre, half) }
    }
    case 'halfspace': {
      // Only an axis-aligned half-space bounds anything; a slanted one bounds nothing on its own.
      const min: Vec3 = [-Infinity, -Infinity, -Infinity]
      const max: Vec3 = [Infinity, Infinity, Infinity]
      for (let a = 0; a < 3; a++) {
        const others = leaf.normal.filter((_, i) => i !== a)
        if (others.some((c) => c !== 0)) continue
        if (leaf.normal[a]! > 0) max[a] = leaf.offset / leaf.normal[a]!
        if (leaf.normal[a]! < 0) min[a] = leaf.offset / leaf.normal[a]!
      }
      return { min, max }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Ray casting through the solid tree

/** A ray o + t·d; `inv` holds 1/d for the slab tests. */
interface Ray {
  readonly o: Vec3
  readonly d: Vec3
  readonly inv: Vec3
}

/** Where a ray crosses a primitive's surface; `flip` when the solid lies outside that primitive (a cut). */
interface Crossing {
  readonly t: number
  readonly leaf: Leaf
  readonly flip: boolean
}
/** One stretch of a ray inside the solid, entry to exit. */
interface Span {
  readonly enter: Crossing
  readonly exit: Crossing
}

function makeRay(o: Vec3, d: Vec3): Ray {
  // A zero component would give 0·∞ = NaN in the slab tests; a tiny one gives the same answers.
  const safe: Vec3 = [nonZero(d[0]), nonZero(d[1]), nonZero(d[2])]
  return { o, d: safe, inv: [1 / safe[0], 1 / safe[1], 1 / safe[2]] }
}

function nonZero(c: number): number {
  return Math.abs(c) < 1e-12 ? 1e-12 : c
}

function hitsBounds(ray: Ray, b: Bounds): boolean {
  let near = -Infinity
  let far = Infinity
  for (let a = 0; a < 3; a++) {
    const lo = (b.min[a]! - ray.o[a]!) * ray.inv[a]!
    const hi = (b.max[a]! - ray.o[a]!) * ray.inv[a]!
    near = Math.max(near, Math.min(lo, hi))
    far = Math.min(far, Math.max(lo, hi))
  }
  return near <= far && far > 0
}

/** The spans of the ray inside `shape`, sorted and disjoint (t may be negative). */
function spans(shape: Shape, ray: Ray): Span[] {
  if (!hitsBounds(ray, shape.bounds)) return []
  switch (shape.kind) {
    case 'union': {
      const all: Span[] = []
      for (const part of shape.parts) for (const span of spans(part, ray)) all.push(span)
      return unite(all)
    }
    case 'intersect': {
      let result = spans(shape.parts[0]!, ray)
      for (let i = 1; i < shape.parts.length && result.length > 0; i++) {
        result = intersectSpans(result, spans(shape.parts[i]!, ray))
      }
      return result
    }
    case 'subtract': {
      const from = spans(shape.from, ray)
      return from.length === 0 ? from : subtractSpans(from, spans(shape.cut, ray))
    }
    default: {
      const t = leafInterval(shape, ray)
      if (t === undefined) return []
      return [{ enter: { t: t[0], leaf: shape, flip: false }, exit: { t: t[1], leaf: shape, flip: false } }]
    }
  }
}

function unite(all: Span[]): Span[] {
  if (all.length < 2) return all
  all.sort((a, b) => a.enter.t - b.enter.t)
  const out: Span[] = []
  let current = all[0]!
  for (let i = 1; i < all.length; i++) {
    const next = all[i]!
    if (next.enter.t <= current.exit.t) {
      if (next.exit.t > current.exit.t) current = { enter: current.enter, exit: next.exit }
    } else {
      out.push(current)
      current = next
    }
  }
  out.push(current)
  return out
}

function intersectSpans(a: Span[], b: Span[]): Span[] {
  const out: Span[] = []
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    const x = a[i]!
    const y = b[j]!
    const enter = x.enter.t >= y.enter.t ? x.enter : y.enter
    const exit = x.exit.t <= y.exit.t ? x.exit : y.exit
    if (enter.t < exit.t) out.push({ enter, exit })
    if (x.exit.t <= y.exit.t) i++
    else j++
  }
  return out
}

/** A minus b: where a cut span ends inside a, the cut's surface bounds the solid, facing the other way. */
function subtractSpans(a: Span[], b: Span[]): Span[] {
  const out: Span[] = []
  const flipped = (c: Crossing): Crossing => ({ t: c.t, leaf: c.leaf, flip: !c.flip })
  for (const span of a) {
    let enter = span.enter
    for (const cut of b) {
      if (cut.exit.t <= enter.t) continue
      if (cut.enter.t >= span.exit.t) break
      if (cut.enter.t > enter.t) out.push({ enter, exit: flipped(cut.enter) })
      enter = flipped(cut.exit)
    }
    if (enter.t < span.exit.t) out.push({ enter, exit: span.exit })
  }
  return out
}

/** Entry and exit of the ray through a primitive, if it crosses it. */
function leafInterval(leaf: Leaf, ray: Ray): [number, number] | undefined {
  const { o, d, inv } = ray
  switch (leaf.kind) {
    case 'box': {
      let near = -Infinity
      let far = Infinity
      for (let a = 0; a < 3; a++) {
        const lo = (leaf.centre[a]! - leaf.half[a]! - o[a]!) * inv[a]!
        const hi = (leaf.centre[a]! + leaf.half[a]! - o[a]!) * inv[a]!
        near = Math.max(near, Math.min(lo, hi))
        far = Math.min(far, Math.max(lo, hi))
      }
      return near < far ? [near, far] : undefined
    }
    case 'ellipsoid': {
      // In coordinates scaled by the radii the ellipsoid is the unit sphere.
      const [cx, cy, cz] = leaf.centre
      const [rx, ry, rz] = leaf.radii
      const ox = (o[0] - cx) / rx
      const oy = (o[1] - cy) / ry
      const oz = (o[2] - cz) / rz
      const dx = d[0] / rx
      const dy = d[1] / ry
      const dz = d[2] / rz
      return quadratic(
        dx * dx + dy * dy + dz * dz,
        ox * dx + oy * dy + oz * dz,
        ox * ox + oy * oy + oz * oz - 1,
      )
    }
    case 'cylinder': {
      // The infinite cylinder's span (a quadratic across the axis), clipped by the slab of the caps.
      const k = leaf.axis
      const [i, j] = k === 0 ? [1, 2] : k === 1 ? [0, 2] : [0, 1]
      const oi = o[i]! - leaf.centre[i]!
      const oj = o[j]! - leaf.centre[j]!
      const di = d[i]!
      const dj = d[j]!
      const side = quadratic(di * di + dj * dj, oi * di + oj * dj, oi * oi + oj * oj - leaf.radius ** 2)
      if (side === undefined) return undefined
      const lo = (leaf.centre[k] - leaf.half - o[k]) * inv[k]
      const hi = (leaf.centre[k] + leaf.half - o[k]) * inv[k]
      const near = Math.max(side[0], Math.min(lo, hi))
      const far = Math.min(side[1], Math.max(lo, hi))
      return near < far ? [near, far] : undefined
    }
    case 'halfspace': {
      const nd = dot(leaf.normal, d)
      const t = (leaf.offset - dot(leaf.normal, o)) / nd
      return nd > 0 ? [-Infinity, t] : [t, Infinity]
    }
  }
}

/** Roots of a·t² + 2b·t + c = 0, in order, if real. */
function quadratic(a: number, b: number, c: number): [number, number] | undefined {
  const disc = b * b - a * c
  if (disc <= 0 || a < 1e-18) return undefined
  const s = Math.sqrt(disc)
  return [(-b - s) / a, (-b + s) / a]
}

/** Outward normal of a primitive at a point on its surface. */
function leafNormal(leaf: Leaf, p: Vec3): Vec3 {
  switch (leaf.kind) {
    case 'box': {
      // The face is the axis along which the point is furthest out, relative to the half-size.
      let axis = 0
      let best = -Infinity
      for (let a = 0; a < 3; a++) {
        const q = Math.abs(p[a]! - leaf.centre[a]!) / leaf.half[a]!
        if (q > best) {
          best = q
          axis = a
        }
      }
      const n: Vec3 = [0, 0, 0]
      n[axis] = Math.sign(p[axis]! - leaf.centre[axis]!)
      return n
    }
    case 'ellipsoid':
      return normalise([0, 1, 2].map((a) => (p[a]! - leaf.centre[a]!) / leaf.radii[a]! ** 2) as Vec3)
    case 'cylinder': {
      const k = leaf.axis
      const radial = sub(p, leaf.centre)
      const along = radial[k]
      radial[k] = 0
      const r = Math.hypot(radial[0], radial[1], radial[2])
      if (Math.abs(along) / leaf.half > r / leaf.radius) {
        const n: Vec3 = [0, 0, 0]
        n[k] = Math.sign(along)
        return n
      }
      return [radial[0] / r, radial[1] / r, radial[2] / r]
    }
    case 'halfspace':
      return leaf.normal
  }
}

/** Where a ray first meets a surface: distance, point, outward normal, and the texture there. */
export interface Hit {
  t: number
  point: Vec3
  normal: Vec3
  texture: Texture
}

/** The first surface the ray meets at t > `near`, with its point and outward normal. */
export function firstHit(shape: Shape, origin: Vec3, direction: Vec3, near: number): Hit | undefined {
  const ray = makeRay(origin, normalise(direction))
  const span = spans(shape, ray).find((s) => s.exit.t > near && s.enter.t > near)
  if (span === undefined) return undefined
  const { t, leaf, flip } = span.enter
  const point = add(ray.o, scale(ray.d, t))
  const normal = leafNormal(leaf, point)
  return { t, point, normal: flip ? scale(normal, -1) : normal, texture: leaf.texture }
}

/** Whether the ray from `origin` along `direction` is blocked at t > `near`. */
export function blocked(shape: Shape, origin: Vec3, direction: Vec3, near: number): boolean {
  return occludes(shape, makeRay(origin, direction), near)
}

/** Whether the ray is inside `shape` somewhere beyond `near`; a union stops at its first blocking part. */
function occludes(shape: Shape, ray: Ray, near: number): boolean {
  if (!hitsBounds(ray, shape.bounds)) return false
  if (shape.kind === 'union') return shape.parts.some((part) => occludes(part, ray, near))
  return spans(shape, ray).some((s) => s.exit.t > near)
}

/** Whether point `p` lies inside `shape`. */
export function insideShape(shape: Shape, p: Vec3): boolean {
  const b = shape.bounds
  for (let a = 0; a < 3; a++) if (p[a]! < b.min[a]! || p[a]! > b.max[a]!) return false
  switch (shape.kind) {
    case 'union':
      return shape.parts.some((part) => insideShape(part, p))
    case 'intersect':
      return shape.parts.every((part) => insideShape(part, p))
    case 'subtract':
      return insideShape(shape.from, p) && !insideShape(shape.cut, p)
    case 'box':
      return true // inside its bounds
    case 'ellipsoid': {
      const q = [0, 1, 2].map((a) => (p[a]! - shape.centre[a]!) / shape.radii[a]!)
      return q[0]! ** 2 + q[1]! ** 2 + q[2]! ** 2 <= 1
    }
    case 'cylinder': {
      const r = sub(p, shape.centre)
      r[shape.axis] = 0
      return r[0] ** 2 + r[1] ** 2 + r[2] ** 2 <= shape.radius ** 2
    }
    case 'halfspace':
      return dot(shape.normal, p) <= shape.offset
  }
}

// ---------------------------------------------------------------------------------------------------
// Small vector helpers

export function add(a: Vec3, b: Vec3): Vec3 {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
export function sub(a: readonly number[], b: readonly number[]): Vec3 {
  return [a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!]
}
export function dot(a: readonly number[], b: readonly number[]): number {
  return a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!
}
export function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
export function normalise(a: Vec3): Vec3 {
  const l = Math.hypot(a[0], a[1], a[2])
  return [a[0] / l, a[1] / l, a[2] / l]
}
export function scale(c: Vec3, s: number): Vec3 {
  return [c[0] * s, c[1] * s, c[2] * s]
}
export function vmin(a: readonly number[], b: readonly number[]): Vec3 {
  return [Math.min(a[0]!, b[0]!), Math.min(a[1]!, b[1]!), Math.min(a[2]!, b[2]!)]
}
export function vmax(a: readonly number[], b: readonly number[]): Vec3 {
  return [Math.max(a[0]!, b[0]!), Math.max(a[1]!, b[1]!), Math.max(a[2]!, b[2]!)]
}
