import { surfacePoint } from '../jobs/vertex/surface-refinement.ts'
import type { TargetSpace } from '../jobs/vertex/target-space.ts'

/**
 * Writes coloured vertices as a binary little-endian PLY (`x y z` float32, `red green blue` uchar)
 * in the data set's coordinates; every point-cloud tool (MeshLab, CloudCompare, Blender) reads it.
 * Each vertex lies at its surface point (`offset`, a model's) where given, at its centre otherwise.
 */
export function encodePly(space: TargetSpace, ids: Uint32Array, rgb: Uint8Array, offset?: Int8Array): Buffer {
  const header =
    'ply\nformat binary_little_endian 1.0\ncomment crowdmesh frame outcome\n' +
    `element vertex ${ids.length}\n` +
    'property float x\nproperty float y\nproperty float z\n' +
    'property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n'
  const head = Buffer.from(header, 'ascii')
  const body = Buffer.alloc(ids.length * 15)
  const c = new Float64Array(3)
  for (let k = 0; k < ids.length; k++) {
    surfacePoint(space, ids[k]!, offset, k, c)
    const o = k * 15
    body.writeFloatLE(c[0]!, o)
    body.writeFloatLE(c[1]!, o + 4)
    body.writeFloatLE(c[2]!, o + 8)
    body[o + 12] = rgb[k * 3]!
    body[o + 13] = rgb[k * 3 + 1]!
    body[o + 14] = rgb[k * 3 + 2]!
  }
  return Buffer.concat([head, body])
}

/** Reads back a PLY written by `encodePly` (used by tests and tools). */
export function decodePly(bytes: Buffer): { xyz: Float32Array; rgb: Uint8Array } {
  const end = bytes.indexOf('end_header\n')
  if (end < 0) throw new Error('not a PLY: no end_header')
  const header = bytes.toString('ascii', 0, end)
  const count = Number(/element vertex (\d+)/.exec(header)?.[1])
  const body = bytes.subarray(end + 'end_header\n'.length)
  const xyz = new Float32Array(count * 3)
  const rgb = new Uint8Array(count * 3)
  for (let k = 0; k < count; k++) {
    const o = k * 15
    xyz[k * 3] = body.readFloatLE(o)
    xyz[k * 3 + 1] = body.readFloatLE(o + 4)
    xyz[k * 3 + 2] = body.readFloatLE(o + 8)
    rgb.set(body.subarray(o + 12, o + 15), k * 3)
  }
  return { xyz, rgb }
}
