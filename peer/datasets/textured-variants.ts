// The two textured scenes, 'arches' and 'pots', built as constructive solids from textured primitives.
import {
  blocks,
  fluted,
  granite,
  grainyPlaster,
  paintedClay,
  patina,
  speckled,
  stripedGlaze,
  wood,
} from './procedural-textures.ts'
import {
  leafBounds,
  type Leaf,
  type Shape,
  sub,
  type Texture,
  type Vec3,
  vmax,
  vmin,
} from './ray-geometry.ts'

// ---------------------------------------------------------------------------------------------------
// Shapes and their bounds

function box(centre: Vec3, half: Vec3, texture: Texture): Leaf {
  const leaf = { kind: 'box' as const, centre, half, texture }
  return { ...leaf, bounds: leafBounds(leaf) }
}
function ellipsoid(centre: Vec3, radii: Vec3, texture: Texture): Leaf {
  const leaf = { kind: 'ellipsoid' as const, centre, radii, texture }
  return { ...leaf, bounds: leafBounds(leaf) }
}
function sphere(centre: Vec3, radius: number, texture: Texture): Leaf {
  return ellipsoid(centre, [radius, radius, radius], texture)
}
function cylinder(centre: Vec3, radius: number, half: number, axis: 0 | 1 | 2, texture: Texture): Leaf {
  const leaf = { kind: 'cylinder' as const, centre, radius, half, axis, texture }
  return { ...leaf, bounds: leafBounds(leaf) }
}
/** The half-space below height `z` (`below` false: above it). */
function zCut(z: number, below: boolean, texture: Texture): Leaf {
  const normal: Vec3 = below ? [0, 0, 1] : [0, 0, -1]
  const leaf = { kind: 'halfspace' as const, normal, offset: below ? z : -z, texture }
  return { ...leaf, bounds: leafBounds(leaf) }
}
/**
 * A union; a union of many parts becomes a tree of unions split along the longest axis, so a ray
 * skips whole groups whose bounds it misses (a bounding volume hierarchy for free).
 */
function union(...parts: Shape[]): Shape {
  const min = parts.reduce<Vec3>((m, p) => vmin(m, p.bounds.min), [Infinity, Infinity, Infinity])
  const max = parts.reduce<Vec3>((m, p) => vmax(m, p.bounds.max), [-Infinity, -Infinity, -Infinity])
  if (parts.length <= 3) return { kind: 'union', parts, bounds: { min, max } }
  const size = sub(max, min)
  const axis = size[0] >= size[1] && size[0] >= size[2] ? 0 : size[1] >= size[2] ? 1 : 2
  const middle = (s: Shape) => s.bounds.min[axis] + s.bounds.max[axis]
  const sorted = [...parts].sort((a, b) => middle(a) - middle(b))
  const half = Math.ceil(sorted.length / 2)
  return {
    kind: 'union',
    parts: [union(...sorted.slice(0, half)), union(...sorted.slice(half))],
    bounds: { min, max },
  }
}
function intersect(...parts: Shape[]): Shape {
  const min = parts.reduce<Vec3>((m, p) => vmax(m, p.bounds.min), [-Infinity, -Infinity, -Infinity])
  const max = parts.reduce<Vec3>((m, p) => vmin(m, p.bounds.max), [Infinity, Infinity, Infinity])
  return { kind: 'intersect', parts, bounds: { min, max } }
}
function subtract(from: Shape, cut: Shape): Shape {
  return { kind: 'subtract', from, cut, bounds: from.bounds }
}

// ---------------------------------------------------------------------------------------------------
// The two scenes (z up, units of about a metre; the object sits on z = 0)

/** A small open temple: its court, the gaps between columns and the arches are concavities. */
export function archesShape(seed: number): Shape {
  const stone = blocks(seed, [196, 172, 128], 0.3, 0.06)
  const plaster = grainyPlaster(seed + 1, [226, 212, 182])
  const parts: Shape[] = [
    box([0, 0, 0.06], [1.0, 0.62, 0.06], stone),
    box([0, 0, 0.18], [0.9, 0.52, 0.06], stone),
  ]
  for (const y of [-0.38, 0.38]) {
    for (const x of [-0.5, -0.17, 0.17, 0.5]) parts.push(column(seed, x, y))
    parts.push(box([0, y, 1.04], [0.8, 0.1, 0.06], plaster))
  }
  for (const x of [-0.72, 0.72]) parts.push(archedWall(x, plaster))
  const porphyry = speckled(seed + 2, [176, 84, 72], [226, 190, 170], 0.12)
  parts.push(box([0, 0, 0.36], [0.13, 0.13, 0.12], porphyry))
  parts.push(sphere([0, 0, 0.62], 0.14, patina(seed + 3)))
  return union(...parts)
}

/** A fluted column on a square base under a square capital. */
function column(seed: number, x: number, y: number): Shape {
  const plaster = grainyPlaster(seed + 1, [226, 212, 182])
  return union(
    box([x, y, 0.27], [0.085, 0.085, 0.03], plaster),
    cylinder([x, y, 0.6], 0.062, 0.3, 2, fluted(seed + 4, x, y)),
    box([x, y, 0.95], [0.095, 0.095, 0.03], plaster),
  )
}

/** An end wall across y with a round-headed opening through it along x. */
function archedWall(x: number, texture: Texture): Shape {
  const wall = box([x, 0, 0.66], [0.05, 0.48, 0.44], texture)
  const opening = union(
    box([x, 0, 0.46], [0.08, 0.17, 0.26], texture),
    cylinder([x, 0, 0.72], 0.17, 0.08, 0, texture),
  )
  return subtract(wall, opening)
}

/** A plate with an amphora (cavity and handle loops), a bowl, and a block with a slot. */
export function potsShape(seed: number): Shape {
  const plate = cylinder([0, 0, 0.04], 1.1, 0.04, 2, granite(seed))
  return union(plate, amphora(seed, -0.3, 0.1), bowl(seed, 0.5, 0.45), slottedBlock(seed, 0.45, -0.45))
}

function amphora(seed: number, x: number, y: number): Shape {
  const clay = paintedClay(seed + 5, x, y)
  const inside = grainyPlaster(seed + 6, [222, 196, 156])
  const body = intersect(ellipsoid([x, y, 0.48], [0.42, 0.42, 0.42], clay), zCut(0.8, true, clay))
  const neck = cylinder([x, y, 0.81], 0.28, 0.07, 2, clay)
  const lip = cylinder([x, y, 0.88], 0.31, 0.02, 2, clay)
  const handles = [-1, 1].map((side) =>
    subtract(
      cylinder([x + side * 0.4, y, 0.55], 0.16, 0.035, 1, clay),
      cylinder([x + side * 0.4, y, 0.55], 0.1, 0.1, 1, clay),
    ),
  )
  // The flat underside: the body sphere would dip below the plate top.
  const solid = intersect(union(body, neck, lip, ...handles), zCut(0.08, false, clay))
  const cavity = union(sphere([x, y, 0.48], 0.37, inside), cylinder([x, y, 0.75], 0.22, 0.2, 2, inside))
  return subtract(solid, cavity)
}

function bowl(seed: number, x: number, y: number): Shape {
  const glaze = stripedGlaze(seed + 7, [x, y, 0.4], 0.27)
  const foot = cylinder([x, y, 0.1], 0.12, 0.02, 2, glaze)
  const shell = subtract(
    intersect(sphere([x, y, 0.4], 0.3, glaze), zCut(0.4, true, glaze)),
    sphere([x, y, 0.4], 0.27, glaze),
  )
  return union(foot, shell)
}

function slottedBlock(seed: number, x: number, y: number): Shape {
  const timber = wood(seed + 8)
  return subtract(box([x, y, 0.3], [0.26, 0.2, 0.22], timber), box([x, y, 0.52], [0.09, 0.3, 0.16], timber))
}
